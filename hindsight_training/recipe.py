"""Multi-run training recipes: ``train --task both`` and ``train --task ensemble`` as ordered steps.

A recipe is a list of :class:`Step`: each runs one or more commands (``python -m MODULE ARGV``) in
their own processes, side by side when there are several, with their output in a log file. A step
that ends well leaves a marker ``<name>.done`` in the recipe's folder; with ``--resume`` a marked
step is skipped and the training runs of the others continue from their last checkpoint, so a
recipe stopped part-way is picked up where it stopped.

- ``both`` (:func:`both_steps`): the detector and a keypoint network side by side, one thread each,
  then export and evaluate (about two hours with ``--minutes 125``).
- ``ensemble`` (:func:`ensemble_steps`): the recipe of the shipped model. The detector and the
  first keypoint member side by side; the skip-connection member; a two-member model, whose
  pipeline places the boxes the MoveNet member trains half its crops in; the MoveNet member; then
  the three members exported as one ensemble with the detector, the score fitted, and evaluated.
  Each run trains the steps the shipped one did (:data:`ENSEMBLE_STEPS`), so the recipe trains as
  far on a slow or busy computer, only later (about 28,600 steps in all: some 8 hours on
  two free cores at 1 s a step; ``--resume`` continues a stopped run). With ``--minutes`` the
  total time is shared instead, as the shipped runs' minutes were (125, 140, 100): quicker, but a
  slower computer then trains fewer steps. The recipe's detector starts from ImageNet; the shipped
  detector was fine-tuned from an earlier joint network, which the recipe does not repeat.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Shares of the ``ensemble`` time budget: the shipped runs' minutes (first member and detector, skips member, MoveNet).
ENSEMBLE_MINUTES: tuple[float, float, float] = (125.0, 140.0, 100.0)
#: Step budgets of the ``ensemble`` runs (its default): the shipped members' steps (their training summaries in
#: the shipped manifest) and, for the detector, which the shipped model fine-tuned from an earlier network,
#: those of the one 135-minute detector run from ImageNet (5,327; ``models/HISTORY.md``, trial 11).
ENSEMBLE_STEPS: dict[str, int] = {"detector": 5300, "member0": 6300, "member1": 9751, "member2": 7226}


@dataclass(frozen=True)
class Command:
    """``python -m module *argv``; ``label`` names its log when a step runs several side by side."""

    module: str
    argv: tuple[str, ...]
    label: str = ""


@dataclass(frozen=True)
class Step:
    """One step of a recipe.

    Attributes
    ----------
    name : str
        Short name: the marker ``<name>.done`` and the log ``<name>.log`` (``<name>.<label>.log`` for
        each of several commands) in the recipe's folder.
    commands : tuple of Command
        Run side by side when there are several.
    """

    name: str
    commands: tuple[Command, ...]

    def log_paths(self, folder: Path) -> list[Path]:
        """Where each command's output goes."""
        if len(self.commands) == 1:
            return [folder / f"{self.name}.log"]
        return [folder / f"{self.name}.{c.label or i}.log" for i, c in enumerate(self.commands)]


def _train(argv: list[str], label: str = "") -> Command:
    return Command("hindsight_training.train", tuple(argv), label)


def _pair(commands: list[tuple[str, list[str]]]) -> tuple[Command, ...]:
    """The two runs of :func:`both_commands` as commands labelled by their task."""
    return tuple(_train(argv, task) for task, argv in commands)


def _budget(args: argparse.Namespace) -> list[str]:
    """The budget options of a run: ``--steps`` when the command line gave steps, else ``--minutes``."""
    return ["--steps", str(args.steps)] if args.steps else ["--minutes", str(args.minutes)]


def both_commands(
    args: argparse.Namespace, folder: Path | None = None, budgets: dict[str, list[str]] | None = None
) -> list[tuple[str, list[str]]]:
    """The two runs of ``--task both``: (task, argv) each, one thread each, with the options each run takes.

    ``folder``: checkpoints in ``folder/detector`` and ``folder/member0``; None -> each task's default folder.
    ``budgets``: each task's budget options; None -> ``args``' budget for both.
    """
    budgets = budgets or {"keypoints": _budget(args), "detector": _budget(args)}
    common = ["--threads", "1", "--seed", str(args.seed), "--data", str(args.data)]
    common += ["--eval-every", str(args.eval_every), "--frozen-blocks", str(args.frozen_blocks)]
    if args.resume:
        common.append("--resume")
    if args.init is not None:
        common += ["--init", str(args.init)]
    keypoints = ["--lr", str(args.lr), "--kp-batch", str(args.kp_batch), "--backbone", args.backbone]
    keypoints += ["--crop-sizes", args.crop_sizes, "--p-dog", args.p_dog, "--hind-weight", str(args.hind_weight)]
    keypoints += ["--skips"] * bool(args.skips) + ["--init-head"] * bool(args.init_head)
    keypoints += ["--ema", str(args.ema)]
    if args.pipeline_boxes is not None:
        keypoints += ["--pipeline-boxes", str(args.pipeline_boxes), "--p-pipeline", str(args.p_pipeline)]
    if args.teacher is not None:
        keypoints += ["--teacher", str(args.teacher), "--teacher-weight", str(args.teacher_weight)]
    detector = ["--lr", str(args.lr / 2), "--det-batch", str(args.det_batch), "--det-size", str(args.det_size)]
    detector += [
        "--det-zoom",
        args.det_zoom,
        "--score-holdout",
        str(args.score_holdout),
        "--det-every",
        str(args.det_every),
    ]
    if folder is not None:
        keypoints += ["--out", str(folder / "member0")]
        detector += ["--out", str(folder / "detector")]
    return [
        ("keypoints", ["--task", "keypoints", *budgets["keypoints"], *common, *keypoints]),
        ("detector", ["--task", "detector", *budgets["detector"], *common, *detector]),
    ]


def both_steps(args: argparse.Namespace, model_out: Path) -> list[Step]:
    """``--task both``: the two networks side by side, then exported to ``model_out`` and evaluated."""
    data = ["--data", str(args.data)]
    return [
        Step("train", _pair(both_commands(args))),
        Step("export", (Command("hindsight_training.export", ("--out", str(model_out), *data)),)),
        Step(
            "evaluate", (Command("hindsight_training.evaluate", ("--model", str(model_out), "--write-sidecar", *data)),)
        ),
    ]


def ensemble_steps(args: argparse.Namespace, folder: Path, model_out: Path, defaults: argparse.Namespace) -> list[Step]:
    """``--task ensemble``: the shipped model's recipe, checkpoints in ``folder``, the model written to ``model_out``.

    Each run trains its steps of :data:`ENSEMBLE_STEPS`; with ``args.minutes``, that whole time
    budget is shared in the proportions of :data:`ENSEMBLE_MINUTES` instead. ``args.seed`` seeds
    the first two runs, the second and third members get the next two seeds. The networks take the
    recipe's options, not the command line's: ``defaults`` are the training command's default
    options (``train.build_parser().parse_args([])``), which the first member and the detector take.
    """
    if args.minutes is None:
        budget = {run: ["--steps", str(steps)] for run, steps in ENSEMBLE_STEPS.items()}
    else:
        first, skips, movenet = (f"{args.minutes * m / sum(ENSEMBLE_MINUTES):g}" for m in ENSEMBLE_MINUTES)
        budget = {"detector": ["--minutes", first], "member0": ["--minutes", first]}
        budget |= {"member1": ["--minutes", skips], "member2": ["--minutes", movenet]}
    pair = argparse.Namespace(**vars(defaults))  # the first member and the detector: the default options
    pair.seed, pair.data, pair.resume = args.seed, args.data, args.resume
    pair.eval_every = args.eval_every
    data = ["--data", str(args.data)]
    common = [*data, "--threads", str(args.threads), "--eval-every", str(args.eval_every)]
    common += ["--resume"] * bool(args.resume)
    boxes = folder / "pipeline_boxes.json"
    two = folder / "two_members" / "dog_pose.json"
    members = [str(folder / f"member{i}" / "best.pt") for i in range(3)]
    export = ["--detector", str(folder / "detector" / "best.pt"), "--keypoint-weights", "int8", *data]
    member1 = ["--task", "keypoints", "--skips", "--hind-weight", "2", *budget["member1"]]
    member1 += ["--seed", str(args.seed + 1), "--out", str(folder / "member1"), *common]
    member2 = ["--task", "keypoints", "--backbone", "movenet-lightning", "--hind-weight", "2", "--crop-sizes", "192"]
    member2 += ["--lr", "5e-4", "--pipeline-boxes", str(boxes), "--p-pipeline", "0.5", "--ema", "0.998"]
    member2 += [*budget["member2"], "--seed", str(args.seed + 2), "--out", str(folder / "member2"), *common]
    return [
        Step(
            "detector_and_member0",
            _pair(both_commands(pair, folder, {"keypoints": budget["member0"], "detector": budget["detector"]})),
        ),
        Step("member1_skips", (_train(member1),)),
        Step(
            "two_members",
            (Command("hindsight_training.export", (*export, "--keypoints", *members[:2], "--out", str(two))),),
        ),
        Step(
            "pipeline_boxes",
            (Command("hindsight_training.pipeline_boxes", ("--model", str(two), "--out", str(boxes), *data)),),
        ),
        Step("member2_movenet", (_train(member2),)),
        Step(
            "export",
            (Command("hindsight_training.export", (*export, "--keypoints", *members, "--out", str(model_out))),),
        ),
        Step(
            "evaluate", (Command("hindsight_training.evaluate", ("--model", str(model_out), "--write-sidecar", *data)),)
        ),
    ]


def run_commands(commands: Sequence[Command], logs: Sequence[Path]) -> list[int]:
    """Run the commands side by side, each one's output appended to its log; their exit codes."""
    procs = []
    for command, path in zip(commands, logs, strict=True):
        with path.open("a") as log:  # the child keeps its own handle
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", command.module, *command.argv], stdout=log, stderr=subprocess.STDOUT
                )
            )
    return [p.wait() for p in procs]


def run_recipe(
    steps: Sequence[Step],
    folder: Path,
    resume: bool,
    run: Callable[[Sequence[Command], Sequence[Path]], list[int]] = run_commands,
) -> None:
    """Run the steps in order; with ``resume`` skip those marked done in ``folder``.

    Raises
    ------
    SystemExit
        With one line naming the step and its logs, when a command of a step fails (the step stays unmarked).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for i, step in enumerate(steps, 1):
        marker = folder / f"{step.name}.done"
        if resume and marker.is_file():
            print(f"[{i}/{len(steps)}] {step.name}: done before, skipped", flush=True)
            continue
        marker.unlink(missing_ok=True)
        logs = step.log_paths(folder)
        print(f"[{i}/{len(steps)}] {step.name}: log in {', '.join(map(str, logs))}", flush=True)
        codes = run(step.commands, logs)
        if any(codes):
            failed = [str(log) for log, code in zip(logs, codes, strict=True) if code]
            raise SystemExit(f"error: step {step.name} failed (exit {max(codes)}); see {', '.join(failed)}")
        marker.write_text("".join(" ".join([c.module, *c.argv]) + "\n" for c in step.commands))
