import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_bootstrap_synth_fit_list_promote(tmp_path, capsys) -> None:
    store = ["--store", str(tmp_path / "store")]
    assert main([*store, "bootstrap"]) == 0
    assert "promoted" in capsys.readouterr().out
    assert main([*store, "bootstrap"]) == 0
    assert "already serves version 1" in capsys.readouterr().out

    data = tmp_path / "s.csv"
    assert main([*store, "synth", "--rows", "4000", "--out", str(data), "--seed", "5"]) == 0
    assert data.read_text().splitlines()[0].endswith(",x99,y")

    assert main([*store, "fit", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "AUC (preliminary fit): train" in out and "saved glm26 v2" in out

    assert main([*store, "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("* glm26 v1") and listing[1].startswith("  glm26 v2")

    assert main([*store, "promote", "2"]) == 0
    manifest = json.loads((tmp_path / "store/glm26/versions/2/manifest.json").read_text())
    assert (tmp_path / "store/glm26/current").read_text().strip() == "2"
    assert manifest["data_fingerprint"]["rows"] == 4000


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m training` as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, cwd=ROOT, timeout=300, env=env
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory) -> Path:
    """A store holding glm26 v1 (serving) and churn v1, v2 (v2 serving), made through the CLI."""
    root = tmp_path_factory.mktemp("cli") / "store"
    assert run_cli("--store", str(root), "bootstrap").returncode == 0
    assert run_cli("bootstrap", "--store", str(root), "--name", "churn").returncode == 0
    assert run_cli("bootstrap", "--store", str(root), "--name", "churn", "--force").returncode == 0
    return root


def test_name_after_the_subcommand_is_accepted(cli_store) -> None:
    result = run_cli("list", "--store", str(cli_store), "--name", "churn")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("  churn v1")
    assert result.stdout.splitlines()[1].startswith("* churn v2")
    assert "glm26" not in result.stdout


def test_list_shows_every_model_and_marks_the_serving_version(cli_store) -> None:
    result = run_cli("--store", str(cli_store), "list")
    assert result.returncode == 0, result.stderr
    listed = [line[:2] + line[2:].split("  ")[0] for line in result.stdout.splitlines()]
    assert listed == ["  churn v1", "* churn v2", "* glm26 v1"]


def test_list_of_an_empty_store_says_how_to_fill_it(tmp_path) -> None:
    result = run_cli("list", "--store", str(tmp_path / "none"))
    assert result.returncode == 0
    assert "no models in" in result.stdout and "bootstrap" in result.stdout


def test_list_of_an_unknown_model_names_it(cli_store) -> None:
    assert_one_line_error(run_cli("list", "--store", str(cli_store), "--name", "nope"), "'nope' has no versions")


def test_promote_of_a_missing_version_names_it_and_the_saved_ones(cli_store) -> None:
    result = run_cli("promote", "7", "--store", str(cli_store), "--name", "churn")
    assert_one_line_error(result, "promote: error:", "'churn' has no version 7", "saved versions: 1, 2")
    assert (cli_store / "churn/current").read_text().strip() == "2"


def test_promote_with_an_invalid_name_is_one_line(cli_store) -> None:
    assert_one_line_error(run_cli("promote", "1", "--store", str(cli_store), "--name", "../x"), "invalid model name")


def test_fit_on_a_missing_file_names_it(cli_store, tmp_path) -> None:
    missing = tmp_path / "nofile.csv"
    result = run_cli("fit", "--store", str(cli_store), "--data", str(missing))
    assert_one_line_error(result, "fit: error:", f"no such file: {missing}")


def test_fit_on_a_missing_target_column_names_it_and_the_columns(cli_store, tmp_path) -> None:
    data = tmp_path / "s.csv"
    assert run_cli("synth", "--rows", "200", "--out", str(data)).returncode == 0
    result = run_cli("fit", "--store", str(cli_store), "--data", str(data), "--target", "churned")
    assert_one_line_error(result, "target column 'churned' is not in the data", "columns: x0, x1")
    assert run_cli("--store", str(cli_store), "list", "--name", "glm26").stdout.count("glm26 v") == 1


def test_fit_on_a_non_binary_target_names_it(cli_store, tmp_path) -> None:
    data = tmp_path / "s.csv"
    assert run_cli("synth", "--rows", "200", "--out", str(data)).returncode == 0
    assert_one_line_error(
        run_cli("fit", "--store", str(cli_store), "--data", str(data), "--target", "x0"),
        "target column 'x0' must hold 0 or 1",
    )


def test_a_usage_mistake_is_argparse_exit_code_2(cli_store) -> None:
    result = run_cli("promote", "seven", "--store", str(cli_store))
    assert result.returncode == 2
    assert "invalid int value: 'seven'" in result.stderr and "Traceback" not in result.stderr
