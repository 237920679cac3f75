"""experiments/make_tables.py: finished runs -> mean +- std per preset next to the published number."""
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import make_tables  # noqa: E402


def fake_run(root: Path, name: str, overrides: list[str], **summary) -> None:
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / "summary.json").write_text(json.dumps({"status": "completed", **summary}))


def test_groups_runs_by_preset_and_compares_with_paper(tmp_path, capsys):
    for seed, acc in ((0, 0.921), (1, 0.923)):
        fake_run(tmp_path, f"flexnet7_{seed}", ["experiment=t3_cifar10_flexnet7", f"seed={seed}"], seed=seed,
                 protocol="paper", best_test_accuracy=acc, test_accuracy=0.5, no_params=671650)
    fake_run(tmp_path, "crashed", ["experiment=t3_cifar10_flexnet7"], status="running", protocol="paper",
             best_test_accuracy=0.1)
    fake_run(tmp_path, "cross", ["experiment=t4_crossres_flexnet7"], seed=0, no_params=1, source_accuracy=0.86,
             ootb_accuracy=0.5, ootb_difference=-0.36, final_accuracy=0.88)
    rows = {row["preset"]: row for row in make_tables.table_rows(make_tables.find_runs([tmp_path]))}
    flexnet = rows["t3_cifar10_flexnet7"]
    assert flexnet["runs"] == 2 and flexnet["seeds"] == "0,1"       # the unfinished run is left out
    assert flexnet["ours"] == "92.20 +- 0.14" and flexnet["paper"] == "92.20 +- 0.10" and flexnet["diff"] == "+0.00"
    assert flexnet["params"] == "671,650"
    cross = rows["t4_crossres_flexnet7"]
    assert cross["ootb_difference"] == "-36.00" and cross["paper_ootb_difference"] == "-34.50 +- 13.90"
    assert make_tables.main([str(tmp_path)]) == 0
    assert ("| t3_cifar10_flexnet7 | FlexNet-7 | 0,1 (2) | 671,650 | best_test_accuracy | 92.20 +- 0.14 | 92.20 +- 0.10 "
            "| +0.00 |") in capsys.readouterr().out


def test_clean_protocol_uses_test_accuracy_at_best_validation(tmp_path):
    fake_run(tmp_path, "a", [], seed=0, protocol="clean", test_accuracy=0.98, best_test_accuracy=0.99)
    rows = make_tables.table_rows(make_tables.find_runs([tmp_path]))
    assert rows[0]["preset"] == "(default)" and rows[0]["ours"] == "98.00" and rows[0]["paper"] == "-"


def test_no_runs_is_an_error(tmp_path):
    assert make_tables.main([str(tmp_path)]) == 1


def test_counts_finished_runs_and_checkpoint_evaluations_only(tmp_path):
    """A run of the preset: finished (engine.lifecycle.is_finished, the same test as train.resume=auto) or a
    checkpoint evaluation; not a cross-resolution run stopped between its phases, nor an evaluation at several
    resolutions."""
    preset = ["experiment=t3_cifar10_flexnet7"]
    fake_run(tmp_path, "completed", preset, seed=0, protocol="paper", best_test_accuracy=0.92)
    fake_run(tmp_path, "early", preset, status="early_stopped", seed=1, protocol="paper", best_test_accuracy=0.92)
    fake_run(tmp_path, "evaluated", preset, status="evaluated", seed=2, protocol="paper", best_test_accuracy=0.92)
    fake_run(tmp_path, "resolutions", preset, status="evaluated_at_resolutions", seed=3)
    fake_run(tmp_path, "between_phases", ["experiment=t4_crossres_flexnet7"], phase="source", seed=0,
             source_accuracy=0.86)
    (tmp_path / "half_written" / ".hydra").mkdir(parents=True)
    (tmp_path / "half_written" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(preset))
    (tmp_path / "half_written" / "summary.json").write_text('{"status": "compl')
    runs = make_tables.find_runs([tmp_path])
    assert sorted(runs) == ["t3_cifar10_flexnet7"]
    assert sorted(s["seed"] for s in runs["t3_cifar10_flexnet7"]) == [0, 1, 2]


def test_top5_columns_where_top5_was_published(tmp_path):
    """ImageNet-32 (Table 6) publishes top-5 accuracy too: ``test_accuracy_top5`` next to the paper's."""
    for seed, (top1, top5) in enumerate(((0.25, 0.48), (0.24, 0.47))):
        fake_run(tmp_path, f"in32_{seed}", ["experiment=t6_imagenet32_flexnet5", f"seed={seed}"], seed=seed,
                 protocol="paper", best_test_accuracy=top1, test_accuracy=top1, test_accuracy_top5=top5)
    fake_run(tmp_path, "c10", ["experiment=t3_cifar10_flexnet7"], seed=0, protocol="paper", best_test_accuracy=0.92)
    rows = {row["preset"]: row for row in make_tables.table_rows(make_tables.find_runs([tmp_path]))}
    assert rows["t6_imagenet32_flexnet5"]["ours_top5"] == "47.50 +- 0.71"
    assert rows["t6_imagenet32_flexnet5"]["paper_top5"] == "47.70 +- 0.60"
    assert "ours_top5" not in rows["t3_cifar10_flexnet7"]
    text = make_tables.markdown(list(rows.values()))
    assert "| top-5 ours (%) | top-5 paper (%) |" in text and "| 47.50 +- 0.71 | 47.70 +- 0.60 |" in text
