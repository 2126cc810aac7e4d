"""Training recipes: the steps of ``--task both`` and ``--task ensemble``, and how they run and resume."""

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

from hindsight_training.recipe import (  # noqa: E402
    ENSEMBLE_MINUTES,
    ENSEMBLE_STEPS,
    Command,
    Step,
    both_steps,
    ensemble_steps,
    run_recipe,
)
from hindsight_training.train import build_parser  # noqa: E402


def _ensemble(tmp_path, *argv):
    args = build_parser().parse_args(["--task", "ensemble", "--data", str(tmp_path / "data"), *argv])
    return ensemble_steps(args, tmp_path / "runs", tmp_path / "model" / "dog_pose.json", build_parser().parse_args([]))


def _argv(step: Step, module: str) -> list[str]:
    (found,) = [list(c.argv) for c in step.commands if c.module == module]
    return found


def _option(argv: list[str], name: str, count: int = 1) -> list[str]:
    i = argv.index(name)
    return argv[i + 1 : i + 1 + count]


def test_task_both_passes_each_option_to_the_run_it_concerns(tmp_path):
    from hindsight_training.recipe import both_commands
    from hindsight_training.train import build_parser

    parser = build_parser()
    given = parser.parse_args(
        ["--minutes", "7", "--skips", "--hind-weight", "2", "--backbone", "efficientnet-lite2", "--crop-sizes", "192"]
        + ["--pipeline-boxes", str(tmp_path / "b.json"), "--p-pipeline", "0.3", "--det-zoom", "0.5,2.0", "--lr", "4e-4"]
        + ["--score-holdout", "10", "--resume", "--eval-every", "5", "--ema", "0.998"]
    )
    runs = dict(both_commands(given))
    kp, det = parser.parse_args(runs["keypoints"]), parser.parse_args(runs["detector"])
    assert (kp.task, det.task) == ("keypoints", "detector")
    for run in (kp, det):  # shared: budget, one thread each, resume, validation interval
        assert (run.minutes, run.steps, run.threads, run.resume, run.eval_every) == (7.0, None, 1, True, 5.0)
    assert kp.skips and kp.hind_weight == 2.0 and kp.backbone == "efficientnet-lite2" and kp.crop_sizes == "192"
    assert kp.pipeline_boxes == tmp_path / "b.json" and kp.p_pipeline == 0.3 and kp.lr == 4e-4
    assert kp.ema == 0.998 and det.ema == 0.0
    assert det.det_zoom == "0.5,2.0" and det.score_holdout == 10 and det.lr == 2e-4
    # the keypoint-only options stay out of the detector run and the detector's out of the keypoint run
    assert not det.skips and det.pipeline_boxes is None and det.hind_weight == 1.0
    assert "--det-zoom" not in runs["keypoints"] and "--score-holdout" not in runs["keypoints"]


def test_the_ensemble_recipe_trains_the_shipped_members_in_order_and_chains_their_files(tmp_path):
    steps = _ensemble(tmp_path, "--minutes", "73", "--seed", "4", "--resume")
    assert [s.name for s in steps] == [
        "detector_and_member0",
        "member1_skips",
        "two_members",
        "pipeline_boxes",
        "member2_movenet",
        "export",
        "evaluate",
    ]
    parser, runs = build_parser(), tmp_path / "runs"
    pair = {a.task: a for a in (parser.parse_args(list(c.argv)) for c in steps[0].commands)}
    assert [c.label for c in steps[0].commands] == ["keypoints", "detector"]
    kp0, det = pair["keypoints"], pair["detector"]
    kp1, kp2 = (parser.parse_args(list(s.commands[0].argv)) for s in (steps[1], steps[4]))
    # where each run keeps its checkpoints, its seed, and that it continues when resumed
    assert (det.out, kp0.out, kp1.out, kp2.out) == tuple(
        runs / n for n in ("detector", "member0", "member1", "member2")
    )
    assert (det.seed, kp0.seed, kp1.seed, kp2.seed) == (4, 4, 5, 6)
    assert all(a.resume for a in (det, kp0, kp1, kp2))
    # the budget is shared as the shipped runs' minutes were; the first two runs share the cores
    budgets = (kp0.minutes, kp1.minutes, kp2.minutes)
    assert det.minutes == kp0.minutes and sum(budgets) == pytest.approx(73.0, abs=1e-3)
    assert [b / 73.0 for b in budgets] == pytest.approx([m / sum(ENSEMBLE_MINUTES) for m in ENSEMBLE_MINUTES], 1e-3)
    assert (det.threads, kp0.threads, kp1.threads, kp2.threads) == (1, 1, 2, 2)
    # each member's own recipe
    assert (kp0.skips, kp0.hind_weight, kp0.backbone, kp0.ema) == (False, 1.0, "efficientnet-lite0", 0.0)
    assert (kp1.skips, kp1.hind_weight, kp1.backbone) == (True, 2.0, "efficientnet-lite0")
    assert (kp2.backbone, kp2.hind_weight, kp2.crop_sizes, kp2.lr, kp2.ema) == (
        "movenet-lightning",
        2.0,
        "192",
        5e-4,
        0.998,
    )
    # files: the two-member model places the boxes the MoveNet member trains in; the export reads every run
    two = _option(_argv(steps[2], "hindsight_training.export"), "--out")[0]
    assert _option(_argv(steps[3], "hindsight_training.pipeline_boxes"), "--model")[0] == two
    assert kp2.pipeline_boxes == Path(_option(_argv(steps[3], "hindsight_training.pipeline_boxes"), "--out")[0])
    final = _argv(steps[5], "hindsight_training.export")
    assert Path(_option(final, "--detector")[0]) == det.out / "best.pt"
    assert [Path(p) for p in _option(final, "--keypoints", 3)] == [
        kp0.out / "best.pt",
        kp1.out / "best.pt",
        kp2.out / "best.pt",
    ]
    assert _option(_argv(steps[2], "hindsight_training.export"), "--keypoints", 3)[:2] == _option(
        final, "--keypoints", 2
    )
    assert _option(final, "--keypoint-weights")[0] == "int8"
    model = str(tmp_path / "model" / "dog_pose.json")
    assert (
        _option(final, "--out")[0] == model
        and _option(_argv(steps[6], "hindsight_training.evaluate"), "--model")[0] == model
    )
    assert "--write-sidecar" in _argv(steps[6], "hindsight_training.evaluate")


def test_the_ensemble_recipe_trains_the_shipped_runs_steps_unless_given_minutes(tmp_path):
    parser = build_parser()
    steps = _ensemble(tmp_path)
    runs = [parser.parse_args(list(c.argv)) for c in (*steps[0].commands, steps[1].commands[0], steps[4].commands[0])]
    by_out = {run.out.name: run for run in runs}
    assert {name: run.steps for name, run in by_out.items()} == ENSEMBLE_STEPS
    assert all(run.minutes is None for run in runs)  # no time limit: as much training on any machine
    timed = _ensemble(tmp_path, "--minutes", "36.5")
    runs = [parser.parse_args(list(c.argv)) for c in (*timed[0].commands, timed[1].commands[0], timed[4].commands[0])]
    assert all(run.steps is None for run in runs)
    assert sum(run.minutes for run in runs[1:]) == pytest.approx(36.5, abs=1e-3)


def test_task_both_gives_both_runs_a_step_budget_when_asked(tmp_path):
    from hindsight_training.recipe import both_commands

    parser = build_parser()
    runs = dict(both_commands(parser.parse_args(["--steps", "40"])))
    for argv in runs.values():
        run = parser.parse_args(argv)
        assert (run.steps, run.minutes) == (40, None)


def test_the_ensemble_recipe_ignores_network_options_meant_for_single_runs(tmp_path):
    plain = _ensemble(tmp_path)
    given = _ensemble(tmp_path, "--skips", "--lr", "3e-4", "--backbone", "efficientnet-lite2", "--hind-weight", "3")
    assert given == plain


def test_task_both_exports_where_it_is_told_and_evaluates_that_model(tmp_path):
    args = build_parser().parse_args(["--data", str(tmp_path), "--minutes", "5"])
    steps = both_steps(args, tmp_path / "m" / "dog_pose.json")
    assert [s.name for s in steps] == ["train", "export", "evaluate"]
    assert len(steps[0].commands) == 2  # side by side
    assert _option(_argv(steps[1], "hindsight_training.export"), "--out") == [str(tmp_path / "m" / "dog_pose.json")]
    assert _option(_argv(steps[2], "hindsight_training.evaluate"), "--model") == [str(tmp_path / "m" / "dog_pose.json")]


class _Runner:
    """Stands in for the processes: records the steps run and fails the commands labelled in ``fail``."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.ran: list[str] = []
        self.logs: list[Path] = []
        self.fail = fail

    def __call__(self, commands, logs) -> list[int]:
        self.ran.append(logs[0].name.split(".")[0])
        self.logs += list(logs)
        return [3 if c.label in self.fail else 0 for c in commands]


STEPS = [Step(n, (Command("vision.x", ("--a", n), n), Command("vision.y", (), f"{n}_y"))) for n in ("one", "two")]
STEPS.append(Step("three", (Command("vision.x", ("--a", "three")),)))


def test_a_failed_step_stops_the_recipe_with_one_line_and_stays_unmarked(tmp_path):
    run = _Runner(fail=("two_y",))
    with pytest.raises(SystemExit) as stop:
        run_recipe(STEPS, tmp_path, resume=False, run=run)
    message = str(stop.value)
    assert "\n" not in message and "step two" in message and str(tmp_path / "two.two_y.log") in message
    assert str(tmp_path / "two.two.log") not in message  # the command that ran well is not blamed
    assert run.ran == ["one", "two"]
    assert (tmp_path / "one.done").is_file() and not (tmp_path / "two.done").exists()
    assert "vision.x --a one" in (tmp_path / "one.done").read_text()
    # several commands side by side: a log each, named by label; one command: the step's log
    assert run.logs[:2] == [tmp_path / "one.one.log", tmp_path / "one.one_y.log"]
    assert STEPS[2].log_paths(tmp_path) == [tmp_path / "three.log"]


def test_resume_skips_the_steps_done_and_a_fresh_run_repeats_them(tmp_path):
    with pytest.raises(SystemExit):
        run_recipe(STEPS, tmp_path, resume=False, run=_Runner(fail=("two",)))
    resumed = _Runner()
    run_recipe(STEPS, tmp_path, resume=True, run=resumed)
    assert resumed.ran == ["two", "three"]
    again = _Runner()
    run_recipe(STEPS, tmp_path, resume=False, run=again)
    assert again.ran == ["one", "two", "three"]


def test_the_budget_defaults_to_the_shipped_recipe_for_the_ensemble_only(monkeypatch, tmp_path):
    from hindsight_training import train

    seen = {}
    monkeypatch.setattr(train, "train_recipe", lambda args: seen.setdefault(args.task, (args.minutes, args.steps)))
    train.main(["--task", "ensemble"])  # its step budgets (ensemble_steps)
    train.main(["--task", "both"])
    train.main(["--task", "ensemble", "--minutes", "20"])
    assert seen == {"ensemble": (None, None), "both": (train.DEFAULT_MINUTES, None)}
    assert train.build_parser().parse_args(["--task", "keypoints"]).minutes is None  # resolved in main
    seen.clear()
    train.main(["--task", "both", "--steps", "30"])
    assert seen == {"both": (None, 30)}
    for argv in (["--steps", "0"], ["--steps", "5", "--minutes", "5"], ["--task", "ensemble", "--steps", "5"]):
        with pytest.raises(SystemExit, match="--steps takes a positive step count"):
            train.main(argv)


def test_the_ensemble_stops_before_training_without_the_movenet_weights(monkeypatch, tmp_path):
    pytest.importorskip("torch", reason="torch (the train extra) is not installed")
    from hindsight_training import recipe, train

    monkeypatch.delenv("HINDSIGHT_MOVENET", raising=False)
    ran = _Runner()
    monkeypatch.setattr(recipe, "run_commands", ran)
    with pytest.raises(SystemExit) as stop:
        train.main(["--task", "ensemble", "--out", str(tmp_path / "runs"), "--data", str(tmp_path)])
    assert "MoveNet" in str(stop.value) and "HINDSIGHT_MOVENET" in str(stop.value) and "\n" not in str(stop.value)
    assert ran.ran == [] and not (tmp_path / "runs").exists()


def test_commands_run_side_by_side_as_processes_each_into_its_own_log(tmp_path):
    from hindsight_training.recipe import run_commands

    missing = tmp_path / "missing.json"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    codes = run_commands([Command("json.tool", ("--help",)), Command("json.tool", (str(missing),))], logs)
    assert codes[0] == 0 and codes[1] != 0
    assert "usage" in logs[0].read_text() and "missing.json" in logs[1].read_text()
