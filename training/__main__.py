"""Command line: python -m training {bootstrap,synth,fit,list,promote}."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_store import ModelNotFoundError, ModelStore, ModelStoreError, artifacts
from settings import Settings
from training.bootstrap import bootstrap
from training.fit import TrainingDataError, fit_csv
from training.pipeline import schema
from training.synth import synthesize


def bootstrap_command(store: ModelStore, name: str, force: bool) -> int:
    """Bootstrap the approved GLM and say what was done."""
    version = bootstrap(store, name, force)
    if version is None:
        print(f"{name} already serves version {store.current(name)} from {store.root}; nothing to do")
        return 0
    manifest = store.manifest(name, version)
    print(f"saved approved GLM as {name} v{version} in {store.root} and promoted it")
    reported = manifest["metrics"]["reported_auc"]["preliminary_model_32k"]["auc"]
    print(f"threshold {manifest['threshold']}, reported AUC {json.dumps(reported)}")
    return 0


def fit(store: ModelStore, name: str, data: Path, target: str, features: int, promote: bool) -> int:
    """Train on a CSV, save a new version and print its metrics."""
    result = fit_csv(data, target=target, n_features=features)
    version = artifacts.save(
        store,
        name,
        result.pipeline,
        schema=schema(result.pipeline),
        threshold=result.threshold,
        metrics=result.metrics,
        data_fingerprint=result.fingerprint,
    )
    metrics = result.metrics
    print(f"rows: {metrics['rows']}")
    print("AUC (preliminary fit): " + ", ".join(f"{k} {v:.4f}" for k, v in metrics["auc_preliminary"].items()))
    print(f"AUC (final fit, all rows): {metrics['auc_final_all_rows']:.4f}")
    print(f"threshold (p{metrics['threshold_percentile']} of training predictions): {result.threshold:.4f}")
    print(f"{'variable':<14} {'coef':>9} {'std err':>8}")
    for variable, coef in metrics["coefficients"].items():
        print(f"{variable:<14} {coef:>9.4f} {metrics['std_err'][variable]:>8.4f}")
    print(f"saved {name} v{version} in {store.root}")
    if promote:
        store.promote(name, version)
        print(f"promoted {name} v{version}")
    return 0


def list_command(store: ModelStore, names: list[str]) -> int:
    """Print every version of each model, the serving one marked with a star."""
    if not names:
        print(f"no models in {store.root}; run `python -m training bootstrap` to save one")
        return 0
    for name in names:
        current = store.current(name)
        versions = store.versions(name)
        if not versions:
            raise ModelNotFoundError(f"model {name!r} has no versions in {store.root}")
        for version in versions:
            manifest = store.manifest(name, version)
            marker = "*" if version == current else " "
            print(f"{marker} {name} v{version}  {manifest['created_at']}  threshold {manifest['threshold']:.4f}")
    return 0


def promote_command(store: ModelStore, name: str, version: int) -> int:
    """Serve a saved version, naming the saved ones when it does not exist."""
    saved = store.versions(name)
    if version not in saved:
        choices = ", ".join(str(v) for v in saved) or "none"
        raise ModelNotFoundError(f"model {name!r} has no version {version} in {store.root} (saved versions: {choices})")
    store.promote(name, version)
    print(f"promoted {name} v{version}")
    return 0


def model_names(store: ModelStore) -> list[str]:
    """Return the names of the models saved in the store, sorted."""
    if not store.root.is_dir():
        return []
    return sorted(entry.name for entry in store.root.iterdir() if (entry / "versions").is_dir())


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """Return the parser; --store and --name go before or after the subcommand."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--store", type=Path, default=settings.model_store_dir, help="model store folder")
    parser.add_argument("--name", help=f"model name (default {settings.model_name}; list: every model)")
    # The same options on each subcommand; SUPPRESS keeps a value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", type=Path, default=argparse.SUPPRESS, help="model store folder")
    common.add_argument("--name", default=argparse.SUPPRESS, help="model name")
    commands = parser.add_subparsers(dest="command", required=True)

    boot = commands.add_parser("bootstrap", parents=[common], help="save and promote the approved GLM")
    boot.add_argument("--force", action="store_true", help="save a new version even if one serves")

    synth = commands.add_parser("synth", parents=[common], help="write a synthetic CSV of the raw schema")
    synth.add_argument("--rows", type=int, required=True)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=26)
    synth.add_argument("--no-label", action="store_true", help="omit y, like the client's test file")

    train = commands.add_parser("fit", parents=[common], help="train on a CSV and save a new version")
    train.add_argument("--data", type=Path, required=True)
    train.add_argument("--target", default="y")
    train.add_argument("--features", type=int, default=25)
    train.add_argument("--promote", action="store_true", help="serve the new version")

    commands.add_parser("list", parents=[common], help="list every model's versions (or --name's)")
    promote = commands.add_parser("promote", parents=[common], help="serve a saved version")
    promote.add_argument("version", type=int)
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command."""
    store = ModelStore(args.store)
    name = args.name or settings.model_name
    if args.command == "bootstrap":
        return bootstrap_command(store, name, args.force)
    if args.command == "synth":
        frame = synthesize(args.rows, seed=args.seed)
        frame.drop(columns=["y"] if args.no_label else []).to_csv(args.out, index=False)
        print(f"wrote {args.rows} rows to {args.out} (seed {args.seed}, event rate {frame['y'].mean():.3f})")
        return 0
    if args.command == "fit":
        return fit(store, name, args.data, args.target, args.features, args.promote)
    if args.command == "list":
        return list_command(store, [args.name] if args.name else model_names(store))
    return promote_command(store, name, args.version)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; a mistake is one line on stderr and exit code 2."""
    settings = Settings.from_env()
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    try:
        return run(args, settings)
    except (ModelStoreError, TrainingDataError, ValueError, OSError) as exc:
        # ValueError covers an invalid model name; OSError an unwritable store or output file.
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
