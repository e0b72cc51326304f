"""`python -m client predict FILE`: score a CSV or JSON file with the prediction service.

Exit status: 0 done, 1 the job failed or took too long, 2 the service or the input refused
the request (a 4xx, an unreadable file), 3 the service could not be reached after retrying.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from client.api import SPLITTING, PredictionClient, Shape
from client.errors import ClientError, ConnectionFailedError, InputError, JobFailedError, WaitTimeoutError
from client.files import DOWNLOAD_TYPES, output_format, read_records, read_results, write_json_lines, write_results
from client.limits import max_rows_in_refusal
from client.progress import ProgressBar

DEFAULT_URL = "http://127.0.0.1:1313"
EXIT_JOB_FAILED = 1
EXIT_REFUSED = 2
EXIT_UNREACHABLE = 3
# What to do about a refusal, by its code.
HINTS = {
    "too_many_rows": "split the input with --batch-rows",
    "webhook_url_refused": "give --webhook-url an https URL of a public host (or leave it out)",
    "webhooks_disabled": "this service sends no webhooks: leave --webhook-url out",
}
# Files sent as they are and results written as the service streams them: formats read line by line.
STREAMED = frozenset({".csv", ".jsonl"})


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser; defaults for the URL and key come from PREDICT_URL and API_KEY."""
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="score the records of a .csv, .json or .jsonl file")
    predict.add_argument("file", type=Path, help="records: CSV with a header x0..x99 (a y column is dropped), or JSON")
    predict.add_argument(
        "--url",
        default=os.environ.get("PREDICT_URL") or DEFAULT_URL,
        help=f"service base URL (default: $PREDICT_URL or {DEFAULT_URL})",
    )
    predict.add_argument(
        "--threshold", type=float, help="cutoff for business_outcome, in [0, 1] (default: the model's)"
    )
    predict.add_argument("--model", help="name of the model to score with (default: the service's)")
    predict.add_argument("--out", type=Path, help="results file, .csv, .json or .jsonl (default: JSON lines on stdout)")
    predict.add_argument(
        "--batch-rows", type=_positive_int, help="at most this many records per job (default: one job)"
    )
    predict.add_argument(
        "--retries", type=int, default=5, help="further attempts on 503, 429 and connection failures (default: 5)"
    )
    predict.add_argument(
        "--api-key", default=os.environ.get("API_KEY") or None, help="bearer key (default: $API_KEY, which is safer)"
    )
    predict.add_argument(
        "--fields", type=_names, default=(), help="result keys to keep, comma-separated, e.g. phat,business_outcome"
    )
    predict.add_argument(
        "--explain", action="store_true", help="add each variable's contribution (coefficient x input) to each row"
    )
    predict.add_argument("--id-field", help="a field of the input echoed as `id` in each result row")
    predict.add_argument(
        "--webhook-url", help="URL the service POSTs a signed event to when each job ends (its Webhook-Url header)"
    )
    return parser


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


class _BarSafeHandler(logging.Handler):
    """Write log lines to stderr above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


def _show_client_log() -> None:
    # The library logs each retry and each split of the input; the user should see why it waits.
    logger = logging.getLogger("client")
    if not any(isinstance(handler, _BarSafeHandler) for handler in logger.handlers):
        logger.addHandler(_BarSafeHandler())
    logger.setLevel(logging.INFO)


def predict(args: argparse.Namespace) -> int:
    """Score the file with a progress bar, write the results and a summary.

    From a .csv or .jsonl file to a .csv or .jsonl --out, without --batch-rows, the file goes to the
    service as it is and the results come back streamed into --out. Otherwise (or when the file has
    more rows than the service takes per job) the records are read here and sent in jobs of --batch-rows.
    """
    started = time.monotonic()
    if args.out is not None:
        output_format(args.out)  # refuse an unknown extension before doing any work
        if args.batch_rows is None and {args.file.suffix.lower(), args.out.suffix.lower()} <= STREAMED:
            try:
                return stream_file(args, started)
            except ClientError as exc:
                limit = max_rows_in_refusal(exc) if exc.code == "too_many_rows" else None
                if limit is None:
                    raise
                logging.getLogger("client").warning(SPLITTING, limit)
                args.batch_rows = limit
    records = read_records(args.file)
    with (
        PredictionClient(args.url, api_key=args.api_key, retries=args.retries) as client,
        ProgressBar(len(records), sys.stderr) as bar,
    ):
        results = client.predict(
            records, threshold=args.threshold, batch_rows=args.batch_rows, on_progress=bar.scored,
            model=args.model, shape=_shape(args), on_upload=bar.uploaded, events=True, webhook_url=args.webhook_url,
        )  # fmt: skip
    if args.out is None:
        write_json_lines(results, sys.stdout)
        sys.stdout.flush()
    else:
        write_results(results, args.out)
    print(_summary(results, time.monotonic() - started, args.out), file=sys.stderr)
    return 0


def stream_file(args: argparse.Namespace, started: float) -> int:
    """Send the file as it is, follow the job, and stream its results into --out, replaced only when complete."""
    out: Path = args.out
    partial = out.with_name(f".{out.name}.part")
    with (
        PredictionClient(args.url, api_key=args.api_key, retries=args.retries) as client,
        ProgressBar(None, sys.stderr) as bar,
    ):
        job = client.submit_file(
            args.file, args.threshold, args.model, _shape(args), on_upload=bar.uploaded, webhook_url=args.webhook_url
        )
        try:
            client.follow(job.task_id, bar.scored, events=True)
            bar.close()  # its final line, before the download
            with partial.open("wb") as stream:
                client.download(job.task_id, stream, DOWNLOAD_TYPES[output_format(out)])
        except BaseException:
            partial.unlink(missing_ok=True)
            with contextlib.suppress(ClientError, ConnectionFailedError):
                client.cancel(job.task_id)  # a job that already finished refuses: nothing to stop
            raise
    os.replace(partial, out)
    print(_summary(read_results(out), time.monotonic() - started, out), file=sys.stderr)
    return 0


def _shape(args: argparse.Namespace) -> Shape:
    return Shape(args.fields, args.explain, args.id_field)


def _summary(results: Iterable[dict[str, Any]], seconds: float, out: Path | None) -> str:
    rows = errors = events = 0
    for item in results:
        rows += 1
        errors += "error" in item
        events += item.get("business_outcome") == 1
    where = f"; results in {out}" if out is not None else ""
    return (
        f"{rows - errors} rows scored, {errors} rows with errors, "
        f"{events} events (business_outcome 1), {seconds:.1f} s{where}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    args = build_parser().parse_args(argv)
    _show_client_log()
    try:
        return predict(args)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.details is not None:
            print(f"details: {json.dumps(exc.details)}", file=sys.stderr)
        if (hint := HINTS.get(exc.code)) is not None:
            print(f"hint: {hint}", file=sys.stderr)
        return EXIT_REFUSED
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ConnectionFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (JobFailedError, WaitTimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_JOB_FAILED
    except KeyboardInterrupt:
        print("interrupted; jobs not yet collected were cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
