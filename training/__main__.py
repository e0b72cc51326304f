"""Command line: python -m training {bootstrap,synth,fit,list,promote}."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_store import ModelStore, artifacts
from settings import Settings
from training.bootstrap import bootstrap
from training.fit import fit_csv
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


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command."""
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--store", type=Path, default=settings.model_store_dir, help="model store folder")
    parser.add_argument("--name", default=settings.model_name, help="model name")
    commands = parser.add_subparsers(dest="command", required=True)

    boot = commands.add_parser("bootstrap", help="save and promote the approved GLM")
    boot.add_argument("--force", action="store_true", help="save a new version even if one serves")

    synth = commands.add_parser("synth", help="write a synthetic CSV of the raw schema")
    synth.add_argument("--rows", type=int, required=True)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=26)
    synth.add_argument("--no-label", action="store_true", help="omit y, like the client's test file")

    train = commands.add_parser("fit", help="train on a CSV and save a new version")
    train.add_argument("--data", type=Path, required=True)
    train.add_argument("--target", default="y")
    train.add_argument("--features", type=int, default=25)
    train.add_argument("--promote", action="store_true", help="serve the new version")

    commands.add_parser("list", help="list versions")
    promote = commands.add_parser("promote", help="serve a saved version")
    promote.add_argument("version", type=int)

    args = parser.parse_args(argv)
    store = ModelStore(args.store)
    if args.command == "bootstrap":
        return bootstrap_command(store, args.name, args.force)
    if args.command == "synth":
        frame = synthesize(args.rows, seed=args.seed)
        frame.drop(columns=["y"] if args.no_label else []).to_csv(args.out, index=False)
        print(f"wrote {args.rows} rows to {args.out} (seed {args.seed}, event rate {frame['y'].mean():.3f})")
        return 0
    if args.command == "fit":
        return fit(store, args.name, args.data, args.target, args.features, args.promote)
    if args.command == "list":
        current = store.current(args.name)
        for version in store.versions(args.name):
            manifest = store.manifest(args.name, version)
            marker = "*" if version == current else " "
            print(f"{marker} {args.name} v{version}  {manifest['created_at']}  threshold {manifest['threshold']:.4f}")
        return 0
    store.promote(args.name, args.version)
    print(f"promoted {args.name} v{args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
