"""Command line: ``python -m vision`` / ``hindsight``.

stdout carries only JSON when ``--json`` is given; progress and messages go to
stderr. Bad input exits with status 2 and one line ``error: ...``, never a
traceback (set ``HINDSIGHT_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vision import __version__
from vision.errors import HindsightInputError


def safe_name(text: str) -> str:
    """A file name fit for one line of output: control characters replaced, length capped."""
    clean = "".join(c if c.isprintable() else "?" for c in str(text))
    return clean if len(clean) <= 120 else clean[:117] + "..."


class Progress:
    """A plain progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = -1

    def __call__(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1)."""
        if self.quiet:
            return
        pct = int(100 * fraction)
        if self.tty:
            bar = "#" * (pct // 4)
            sys.stderr.write(f"\r{self.label} [{bar:<25}] {pct:3d}% {message:<24}")
            if fraction >= 1:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif pct // 10 != self.last // 10:
            sys.stderr.write(f"{self.label}: {pct}% {message}\n")
        self.last = pct


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _read_report(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise HindsightInputError(f"file not found: {safe_name(p.name)}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HindsightInputError(f"not a Hindsight report (JSON): {safe_name(p.name)}") from exc
    if not isinstance(data, dict) or "metrics" not in data or "quality" not in data:
        raise HindsightInputError(f"not a Hindsight report: {safe_name(p.name)}")
    return data


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyse a video or a pose file and print or save the report."""
    from vision.analysis import analyze_path

    started = time.perf_counter()
    progress = Progress("analysing", quiet=args.quiet)
    result = analyze_path(args.path, fps=args.fps, progress=progress)
    report = result.report
    report["source"]["analysis_seconds"] = round(time.perf_counter() - started, 3)
    if args.overlay:
        if report["source"].get("kind") != "video":
            raise HindsightInputError("--overlay needs a video, not a pose file")
        from vision.overlay import render_overlay

        render_overlay(args.path, result.tracks, result.events, args.overlay, muscle=report["metrics"].get("muscle"))
        _info(args, f"overlay written to {safe_name(args.overlay)}")
    if args.tracks:
        from vision.io import save_poses

        save_poses(result.tracks, args.tracks)
        _info(args, f"tracks written to {safe_name(args.tracks)}")
    if args.plots:
        from vision.plots import FIGURES

        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        for name, build in FIGURES.items():
            fig = build(report)
            fig.savefig(out / f"{name}.png")
        _info(args, f"plots written to {safe_name(str(out))}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        _print_json(report)
    else:
        q = report["quality"]
        print(f"usable: {q['usable']}  view: {q['view']}  hind strides: {q['hind_strides']}")
        for reason in q["reasons"]:
            print(f"  - {reason}")
        for line in report["summary"]:
            print(line)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two reports: JSON, or one line per metric and the verdict in words.

    The verdict names a clip by its file name; when either clip was not scored it says
    ``"<file> could not be scored: <reason>"`` and never that nothing changed.
    """
    from vision.compare import compare_reports, verdict_lines

    result = compare_reports(_read_report(args.before), _read_report(args.after))
    if args.json:
        _print_json(result)
        return 0

    def shown(value: Any) -> str:
        return "-" if value is None else f"{value:.4g}"

    for name, m in result["metrics"].items():
        status = m["status"] if result["comparable"] or m["status"] != "uncertain" else "not compared"
        ci = m.get("ci95")
        interval = f" 95% interval {min(ci):+.3g} to {max(ci):+.3g}" if ci else ""
        print(
            f"{name:24s} {status:12s} before={shown(m['before'])} after={shown(m['after'])} "
            f"change={shown(m['change'])}{interval}"
        )
    for note in result["notes"]:
        print(f"note: {note}")
    names = (safe_name(Path(args.before).name), safe_name(Path(args.after).name))
    for line in verdict_lines(result, *names):
        print(line)
    if result["flag"]:
        print("FLAG: worse beyond noise")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Versions, decoders and the model."""
    import av
    import numpy

    decoders = {}
    for codec in ("h264", "hevc", "vp9", "av1", "mpeg4"):
        try:
            av.codec.Codec(codec, "r")
            decoders[codec] = True
        except Exception:  # noqa: BLE001
            decoders[codec] = False
    try:
        from vision.model.manifest import default_model_path, model_files, model_summary

        model_path = default_model_path()
        model = {"path": str(model_path), "found": model_path.is_file()}
        if model_path.is_file():
            try:
                model["found"] = all(f.is_file() for f in model_files(model_path).values())
                model.update(model_summary(json.loads(model_path.read_text(encoding="utf-8"))))
            except ValueError:
                model["found"] = False
        try:
            import onnxruntime

            model["onnxruntime"] = onnxruntime.__version__
        except ImportError:
            model["onnxruntime"] = None
    except ImportError:
        model = {"path": None, "found": False}
    info = {
        "hindsight": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "pyav": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "decoders": decoders,
        "model": model,
    }
    if args.json:
        _print_json(info)
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return 0


def cmd_keypoints(args: argparse.Namespace) -> int:
    """Dogs and keypoints in still images."""
    from vision.model.detector import keypoints_report

    entries = keypoints_report(args.images)
    if args.json:
        _print_json(entries)
    else:
        for e in entries:
            if "error" not in e:
                print(f"{safe_name(e['image'])}: {len(e['dogs'])} dog(s)")
    for e in entries:
        if "error" in e:
            print(f"error: {safe_name(e['error'])}", file=sys.stderr)
    return 2 if any("error" in e for e in entries) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Create the demo owner, vet and dog with six weekly clips; optionally start the dashboard."""
    from vision.demo import ensure_demo
    from vision.storage import Store

    if args.data:
        os.environ["HINDSIGHT_DATA_DIR"] = str(Path(args.data).resolve())
    store = Store()
    info = ensure_demo(store, progress=Progress("demo data"))
    print(f"data folder: {store.data_dir}", file=sys.stderr)
    print(f"owner login: {info['owner']} / {info['owner_password']}", file=sys.stderr)
    print(f"vet login:   {info['vet']} / {info['vet_password']}", file=sys.stderr)
    if not args.serve:
        return 0
    from vision.dashboard.app import SCRIPT as app

    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        "500",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--browser.gatherUsageStats",
        "false",
        "--theme.base",
        "light",
    ]
    host = "localhost" if args.address in ("127.0.0.1", "localhost", "::1") else args.address
    print(f"dashboard: http://{host}:{args.port}", file=sys.stderr)
    os.environ["HINDSIGHT_DATA_DIR"] = str(store.data_dir)
    os.environ["HINDSIGHT_DEMO"] = "1"  # the login page shows the demo logins
    os.execv(sys.executable, cmd)
    return 0  # pragma: no cover - execv does not return


def _operator_errors(func: Any) -> Any:
    """Turn the store's refusals (PermissionError, ValueError) into one ``error:`` line, exit 2."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except HindsightInputError:
            raise
        except (PermissionError, ValueError) as exc:
            raise HindsightInputError(str(exc)) from exc

    wrapped.__doc__ = func.__doc__
    return wrapped


def _user(store: Any, email: str, role: str | None = None) -> Any:
    user = store.user_by_email(email)
    if user is None or (role and user.role != role):
        raise HindsightInputError(f"no {role or 'user'} with the e-mail {safe_name(email)}")
    return user


@_operator_errors
def cmd_users_add(args: argparse.Namespace) -> int:
    """Create an owner or vet account; the password is the first line of stdin."""
    from vision.storage import Store

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    user = Store().create_user(args.email, args.name or args.email, args.role, password)
    print(user.id)
    return 0


@_operator_errors
def cmd_users_invite(args: argparse.Namespace) -> int:
    """Invite a vet (no dog): print the invitation's link path; the vet opens it to make the account."""
    from vision.storage import Store
    from vision.storage.accounts import INVITATION_TTL

    token = Store().invite_vet(args.email)
    print(f"?invite={token}")
    print(
        f"send the vet the dashboard's address followed by this path (one use, valid {INVITATION_TTL.days} days)",
        file=sys.stderr,
    )
    return 0


@_operator_errors
def cmd_dogs_add(args: argparse.Namespace) -> int:
    """Add a dog to an owner's list; print its id."""
    from vision.storage import Store

    store = Store()
    dog = store.create_dog(_user(store, args.owner, "owner"), args.name, breed=args.breed)
    print(dog.id)
    return 0


@_operator_errors
def cmd_upload(args: argparse.Namespace) -> int:
    """Store a video for a dog and queue its analysis; print the clip id."""
    import datetime as dt

    from vision.jobs import submit_upload
    from vision.storage import Store

    store = Store()
    owner = _user(store, args.owner, "owner")
    path = Path(args.video)
    if not path.is_file():
        raise HindsightInputError(f"file not found: {safe_name(path.name)}")
    when = None
    if args.date:
        try:
            when = dt.date.fromisoformat(args.date)
        except ValueError as exc:
            raise HindsightInputError(f"--date must be YYYY-MM-DD, not {safe_name(args.date)}") from exc
    with path.open("rb") as fh:
        sub = submit_upload(store, owner, args.dog, fh, path.name, when)
    if sub.already_there:
        _info(args, f"already there: clip {sub.clip_id} ({sub.job.status}); no new analysis queued")
    if args.json:
        _print_json({"clip_id": sub.clip_id, "already_there": sub.already_there, "job": sub.job.to_dict()})
    else:
        print(sub.clip_id)
    return 0


@_operator_errors
def cmd_status(args: argparse.Namespace) -> int:
    """A clip's analysis status (queued, running, done, failed, interrupted)."""
    from vision.jobs import job_status
    from vision.storage import Store

    job = job_status(Store(), args.clip_id)
    if args.json:
        _print_json(job.to_dict())
    else:
        where = f", position {job.queue_position} in the queue" if job.queue_position else ""
        print(f"clip {job.clip_id}: {job.status} {100 * job.progress:.0f}%{where}, attempt {job.attempts}")
        if job.error:
            print(f"  error: {safe_name(job.error)}")
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Remove crash leftovers (partial uploads, stale scratch folders, unreferenced files) and say what went."""
    import dataclasses

    from vision.storage import Store
    from vision.storage.cleanup import collect_leftovers

    if args.grace < 0:
        raise HindsightInputError("--grace must not be negative")
    res = collect_leftovers(Store(), grace_s=60.0 * args.grace)
    if args.json:
        _print_json({**dataclasses.asdict(res), "removed": res.removed})
        return 0
    print(
        f"removed {res.incoming} partial upload(s), {res.scratch} stale scratch folder(s), "
        f"{res.orphans} unreferenced file(s), {res.trash} interrupted-cleanup file(s): {res.bytes_freed / 1e6:.1f} MB"
    )
    if res.kept_live:
        print(f"kept {res.kept_live} in use by a running upload or analysis")
    if res.orphans_skipped:
        print("unreferenced files kept: the database names none of the stored files (wrong database?)")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run analysis jobs until stopped (SIGTERM: running analyses finish)."""
    import logging

    from vision.jobs.worker import run_worker

    if args.concurrency is not None and args.concurrency < 1:
        raise HindsightInputError("--concurrency must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s: %(message)s")
    return run_worker(concurrency=args.concurrency, idle_exit_s=args.idle_exit)


def _info(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="hindsight", description="Hind-limb gait analysis of dogs from video.")
    parser.add_argument("--version", action="version", version=f"hindsight {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse a video or pose file")
    a.add_argument("path", help="video (.mp4 .mov .m4v .webm .avi) or pose file (.csv .h5 .nc .slp .json)")
    a.add_argument("--fps", type=float, help="frame rate of a pose file without timestamps")
    a.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    a.add_argument("--overlay", metavar="OUT.mp4", help="write an annotated H.264 overlay video")
    a.add_argument("--tracks", metavar="OUT", help="write cleaned tracks (.csv DeepLabCut or .nc NetCDF)")
    a.add_argument("--report", metavar="OUT.json", help="write the report to a file")
    a.add_argument("--plots", metavar="DIR", help="write report figures as PNG")
    a.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a.set_defaults(func=cmd_analyze)

    c = sub.add_parser("compare", help="compare two reports (before, after)")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)

    i = sub.add_parser("info", help="versions, decoders and model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    d = sub.add_parser("demo", help="create demo data (and --serve the dashboard)")
    d.add_argument("--serve", action="store_true", help="start the dashboard afterwards")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument(
        "--address", default="127.0.0.1", help="interface to listen on (default: this machine only; 0.0.0.0 for all)"
    )
    d.add_argument("--data", help="data folder (default HINDSIGHT_DATA_DIR or the user data folder)")
    d.set_defaults(func=cmd_demo)

    w = sub.add_parser("worker", help="run analysis jobs until stopped")
    w.add_argument("--concurrency", type=int, help="analyses at once, one process each (default: one per two cores)")
    w.add_argument("--idle-exit", type=float, metavar="S", help="stop after S seconds with nothing queued")
    w.set_defaults(func=cmd_worker)

    u = sub.add_parser("users", help="accounts (operator)").add_subparsers(dest="users_command", required=True)
    ua = u.add_parser("add", help="create an account; the password is read from stdin")
    ua.add_argument("email")
    ua.add_argument("--role", required=True, choices=["owner", "vet"])
    ua.add_argument("--name", default="")
    ua.set_defaults(func=cmd_users_add)
    ui = u.add_parser("invite", help="invite a vet; prints the invitation link's path (?invite=TOKEN)")
    ui.add_argument("email")
    ui.set_defaults(func=cmd_users_invite)

    g = sub.add_parser("dogs", help="dogs (operator)").add_subparsers(dest="dogs_command", required=True)
    ga = g.add_parser("add", help="add a dog to an owner; prints its id")
    ga.add_argument("name")
    ga.add_argument("--owner", required=True, metavar="EMAIL")
    ga.add_argument("--breed", default="")
    ga.set_defaults(func=cmd_dogs_add)

    up = sub.add_parser("upload", help="store a video and queue its analysis; prints the clip id")
    up.add_argument("video")
    up.add_argument("--owner", required=True, metavar="EMAIL")
    up.add_argument("--dog", required=True, type=int, metavar="DOG_ID")
    up.add_argument("--date", metavar="YYYY-MM-DD", help="recording date (default: the video's own)")
    up.add_argument("--json", action="store_true")
    up.set_defaults(func=cmd_upload)

    s = sub.add_parser("status", help="a clip's analysis status")
    s.add_argument("clip_id", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    cl = sub.add_parser("cleanup", help="remove crash leftovers and unreferenced stored files")
    cl.add_argument(
        "--grace", type=float, default=15.0, metavar="MIN", help="keep anything younger than MIN minutes (default 15)"
    )
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_cleanup)

    k = sub.add_parser("keypoints", help="dogs and keypoints in images")
    k.add_argument("images", nargs="+")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_keypoints)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except HindsightInputError as exc:
        print(f"error: {safe_name(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        if os.environ.get("HINDSIGHT_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {safe_name(str(exc))})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
