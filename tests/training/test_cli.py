import json

from training.__main__ import main


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
