"""Training schedule and losses (needs the ``train`` extra: torch)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")

from hindsight_training.train import focal_loss, keypoint_loss_weights, pretrained_source, progress_schedule  # noqa: E402
from vision.anatomy import CANONICAL_KEYPOINTS, HIND_LIMB_KEYPOINTS  # noqa: E402


def test_head_warms_up_before_the_backbone():
    head0, bb0 = progress_schedule(0.0, 0)
    assert 0 < head0 < 0.05 and bb0 == 0.0
    head, bb = progress_schedule(0.01, 149)
    assert head == pytest.approx(1.0, abs=0.01) and bb == 0.0
    _, bb = progress_schedule(0.01, 150)
    assert 0 < bb < 0.01
    _, bb = progress_schedule(0.05, 349)
    assert bb == pytest.approx(progress_schedule(0.05, 349)[0])


@given(st.floats(0, 1), st.floats(0, 1), st.integers(400, 100_000))
def test_cosine_decay_is_monotone_and_floored(p1, p2, step):
    lo, hi = sorted((p1, p2))
    assert progress_schedule(hi, step)[0] <= progress_schedule(lo, step)[0] + 1e-12
    assert progress_schedule(1.0, step) == pytest.approx((0.02, 0.02))
    assert progress_schedule(2.0, step) == progress_schedule(1.0, step)  # a resumed, overrun budget stays at the floor


def test_hind_weight_scales_exactly_the_hind_limb_heatmaps():
    w = keypoint_loss_weights(2.5)
    hind = {CANONICAL_KEYPOINTS.index(n) for n in HIND_LIMB_KEYPOINTS}
    assert hind == {
        CANONICAL_KEYPOINTS.index(n) for n in ("tail_base", "left_stifle", "right_hock", "left_hind_paw")
    } | {CANONICAL_KEYPOINTS.index(n) for n in ("right_stifle", "left_hock", "right_hind_paw")}
    assert all(w[i] == 2.5 for i in hind)
    assert all(w[i] == 1.0 for i in range(len(CANONICAL_KEYPOINTS)) if i not in hind)
    np.testing.assert_array_equal(keypoint_loss_weights(), np.ones(len(CANONICAL_KEYPOINTS), np.float32))


def test_focal_loss_rewards_the_right_centre():
    gt = torch.zeros(1, 1, 16, 16)
    ys, xs = np.mgrid[0:16, 0:16]
    gt[0, 0] = torch.from_numpy(np.exp(-((xs - 5) ** 2 + (ys - 9) ** 2) / 4.0).astype(np.float32))
    gt[0, 0, 9, 5] = 1.0
    right = torch.full((1, 1, 16, 16), -6.0)
    right[0, 0, 9, 5] = 6.0
    wrong = torch.full((1, 1, 16, 16), -6.0)
    wrong[0, 0, 2, 12] = 6.0
    assert focal_loss(right, gt) < 0.01 < focal_loss(wrong, gt)


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "efficientnet-lite2"])
def test_keypoint_network_backbones_give_stride_4_heatmaps(backbone):
    from hindsight_training.network import KeypointNet

    net = KeypointNet(pretrained=False, backbone=backbone).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 96, 128))
    assert out.shape == (2, 20, 24, 32)


def test_unknown_backbone_is_refused():
    from hindsight_training.network import KeypointNet

    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        KeypointNet(pretrained=False, backbone="resnet50")


def test_detector_batches_never_show_the_score_holdout(monkeypatch):
    from hindsight_training import dataset as ds
    from hindsight_training.train import Data
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    shown: list[int] = []
    # Tiny stand-in images: this checks which images are drawn, not their pixels.
    monkeypatch.setattr("hindsight_training.train.read_rgb", lambda path: np.zeros((8, 8, 3), np.uint8))

    def sample(img, boxes, size, rng, zoom):
        shown.append(id(img))
        return (np.zeros((size, size, 3), np.uint8), np.zeros((1, 4, 4)), np.zeros((4, 4, 4)), np.zeros((1, 4, 4)))

    monkeypatch.setattr(ds, "detection_sample", sample)
    data = Data(ANIMALPOSE, score_holdout=15)
    held = {r.file for r in data.train if ds.in_score_holdout(r.file, 15)}
    assert held and not held & {r.file for r in data.det_train}
    assert len(data.det_train) == len(data.train) - len(held)
    for seed in range(5):
        data.det_batch(seed, 16, 64)
    held_ids = {id(data.images[f]) for f in held}
    assert shown and not held_ids & set(shown)


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "efficientnet-lite2"])
def test_skip_head_starts_as_the_plain_network_and_reads_strides_16_8_4(backbone):
    from hindsight_training.network import KeypointNet, keypoint_network

    torch.manual_seed(0)
    plain = KeypointNet(pretrained=False, backbone=backbone).eval()
    skip = keypoint_network({"backbone": backbone, "skips": True}).eval()
    missing, unexpected = skip.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("lateral.") for k in missing)
    x = torch.rand(1, 3, 128, 96) * 255
    with torch.no_grad():
        torch.testing.assert_close(skip(x), plain(x))  # zero projections: the same function at start
        # the taps are the last blocks at strides 16, 8, 4: the shapes the transposed convolutions give
        feats, y = [], skip.stem(x)
        for i, block in enumerate(skip.blocks):
            y = block(y)
            if i in skip.skip_taps:
                feats.append(y.shape[-2:])
        assert sorted(feats) == sorted([(8, 6), (16, 12), (32, 24)])
        for conv in skip.lateral:
            conv.weight.normal_(0, 0.1)
        assert not torch.allclose(skip(x), plain(x))  # and the skips do reach the output
    if backbone == "efficientnet-lite0":
        assert skip.skip_taps == (10, 4, 2)  # the detector's taps (network._TAPS) at those strides


def test_checkpoints_live_outside_the_work_tree(monkeypatch, tmp_path):
    from hindsight_training.paths import REPO, checkpoint_root

    monkeypatch.setenv("HINDSIGHT_CHECKPOINTS", str(tmp_path / "ck"))
    assert checkpoint_root() == tmp_path / "ck"
    monkeypatch.delenv("HINDSIGHT_CHECKPOINTS")
    monkeypatch.delenv("HINDSIGHT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    root = checkpoint_root()
    assert root.name == "checkpoints" and tmp_path / "xdg" in root.parents
    assert REPO not in root.parents


def test_keypoint_loss_mixes_labels_and_a_teacher():
    from hindsight_training.train import keypoint_loss, keypoint_loss_weights

    torch.manual_seed(0)
    pred, target, soft = (torch.rand(2, 20, 8, 8) for _ in range(3))
    cw = torch.from_numpy(keypoint_loss_weights(2.0))
    weights = (torch.rand(2, 20) > 0.3).float() * cw
    plain = keypoint_loss(pred, target, weights, cw)
    want = 1000.0 * (weights[:, :, None, None] * (pred - target) ** 2).sum() / (weights.sum() * 64)
    torch.testing.assert_close(plain, want)
    assert keypoint_loss(pred, target, weights, cw, soft, teacher_weight=0.0) == plain
    # all on the teacher: zero when the prediction is the teacher's, labels or not
    assert keypoint_loss(soft, target, weights, cw, soft, teacher_weight=1.0) == 0
    # the teacher teaches unlabelled keypoints too: changing one only there moves the teacher term
    unlabelled = int(torch.nonzero(weights[0] == 0)[0, 0])
    moved = pred.clone()
    moved[0, unlabelled] += 0.5
    assert keypoint_loss(moved, target, weights, cw) == plain
    assert keypoint_loss(moved, target, weights, cw, soft, 1.0) > keypoint_loss(pred, target, weights, cw, soft, 1.0)
    half = keypoint_loss(pred, target, weights, cw, soft, 0.5)
    torch.testing.assert_close(half, 0.5 * plain + 0.5 * keypoint_loss(pred, target, weights, cw, soft, 1.0))


def test_keypoint_batches_cut_the_pipeline_share_around_pipeline_boxes(monkeypatch):
    from hindsight_training import dataset as ds
    from hindsight_training.train import Data
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    monkeypatch.setattr("hindsight_training.train.read_rgb", lambda path: np.zeros((8, 8, 3), np.uint8))
    records = [r for r in ds.load_animalpose(ANIMALPOSE) if r.split == "train"]
    # every animal's pipeline box: its label box moved by a marker offset
    boxes = {r.file: np.array([[*(i.bbox + 1000), 1] for i in r.instances], np.float32) for r in records}
    used: list[tuple[object, object]] = []

    def sample(image, inst, size, rng, box=None, jitter=ds.LABEL_BOX_JITTER):
        used.append((None if box is None else np.asarray(box) - inst.bbox, jitter))
        return np.zeros((size, size, 3), np.uint8), np.zeros((20, size // 4, size // 4)), np.zeros(20)

    monkeypatch.setattr(ds, "keypoint_sample", sample)
    data = Data(ANIMALPOSE, pipeline_boxes=boxes)
    data.kp_batch(0, 200, 64, 0.5, p_pipeline=0.0)
    assert all(b is None and j == ds.LABEL_BOX_JITTER for b, j in used)
    used.clear()
    data.kp_batch(0, 200, 64, 0.5, p_pipeline=0.5)
    moved = [b for b, j in used if b is not None]
    assert all(np.allclose(b, 1000) for b in moved)  # the animal's own pipeline box
    assert all(j == ds.PIPELINE_BOX_JITTER for b, j in used if b is not None)
    assert 60 < len(moved) < 140
    # validation dogs without a pipeline box (only training boxes were given) keep their label box
    assert len(data.val_pipeline_boxes) == len(data.val_dogs)
    assert all(p is None for p in data.val_pipeline_boxes)


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]", '{"format": 99, "boxes": {}}'])
def test_an_unreadable_pipeline_boxes_file_stops_training_with_one_line(tmp_path, content):
    from hindsight_training.train import main

    path = tmp_path / "boxes.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as stop:
        main(["--task", "keypoints", "--pipeline-boxes", str(path), "--out", str(tmp_path / "run")])
    message = str(stop.value)
    assert message.startswith("error: --pipeline-boxes: ") and "\n" not in message
    assert not (tmp_path / "run").exists()  # stopped before anything was written


def test_keypoint_batches_without_pipeline_boxes_draw_as_before(monkeypatch):
    """p_pipeline = 0 draws no extra random number: the crops of (seed, step) match the label-box recipe."""
    from hindsight_training import dataset as ds
    from hindsight_training.train import Data
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    monkeypatch.setattr("hindsight_training.train.read_rgb", lambda path: np.zeros((8, 8, 3), np.uint8))
    picked: list[int] = []
    monkeypatch.setattr(
        ds,
        "keypoint_sample",
        lambda image, inst, size, rng, box=None, jitter=None: (
            picked.append(int(rng.integers(1 << 30))) or np.zeros((size, size, 3), np.uint8),
            np.zeros((20, 1, 1)),
            np.zeros(20),
        ),
    )
    data = Data(ANIMALPOSE)
    data.kp_batch(3, 8, 64, 0.5)
    rng = np.random.default_rng(3)  # the draws of the recipe before pipeline boxes: species, animal, sample
    dogs, others = np.flatnonzero(data.is_dog), np.flatnonzero(~data.is_dog)
    expected = []
    for _ in range(8):
        rng.choice(dogs) if rng.random() < 0.5 else rng.choice(others)
        expected.append(int(rng.integers(1 << 30)))
    assert picked == expected


def test_ema_decay_ramps_up_to_the_given_decay():
    from hindsight_training.train import ema_decay

    ramp = [ema_decay(0.998, step) for step in range(0, 20_000, 50)]
    assert ema_decay(0.998, 0) == pytest.approx(0.1)  # the start is mostly forgotten
    assert all(a <= b for a, b in zip(ramp, ramp[1:], strict=False))
    assert ramp[-1] == 0.998 and max(ramp) == 0.998


def _tiny_net(seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def test_ema_update_moves_the_average_by_one_minus_decay():
    from hindsight_training.train import ema_update

    net, average = _tiny_net(0), _tiny_net(1)
    net[1].num_batches_tracked.fill_(7)
    before = {k: v.clone() for k, v in average.state_dict().items()}
    ema_update(average, net, 0.9)
    after, trained = average.state_dict(), net.state_dict()
    for name, value in after.items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(value, 0.9 * before[name] + 0.1 * trained[name])
        else:  # counters are copied, not averaged
            assert int(value) == 7
    # the trained network is left as it was
    torch.testing.assert_close(net.state_dict()["0.weight"], _tiny_net(0).state_dict()["0.weight"])


@given(st.floats(0.5, 0.99))
def test_ema_of_a_fixed_network_converges_to_it(decay):
    from hindsight_training.train import ema_update

    net, average = _tiny_net(0), _tiny_net(1)
    gap0 = (average[0].weight - net[0].weight).abs().max().item()
    for _ in range(400):
        ema_update(average, net, decay)
    gap = (average[0].weight - net[0].weight).abs().max().item()
    assert gap <= gap0 * decay**400 * 1.01 + 1e-6


@pytest.mark.parametrize(
    ("argv", "needle"), [(["--task", "detector", "--ema", "0.99"], "keypoint"), (["--ema", "1.5"], "decay")]
)
def test_a_wrong_ema_stops_training_with_one_line(tmp_path, argv, needle):
    from hindsight_training.train import main

    base = ["--task", "keypoints", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as stop:
        main(base + argv)
    message = str(stop.value)
    assert message.startswith("error: --ema") and needle in message and "\n" not in message
    assert not (tmp_path / "run").exists()


def _shipped_ensemble():
    """The shipped manifest and its keypoint members' training summaries (skips unless it is an ensemble)."""
    from hindsight_training.recover import shipped_training
    from vision.model.manifest import default_model_path

    manifest = default_model_path()
    members = shipped_training(manifest, "keypoints").get("members") if manifest.is_file() else None
    if not members:
        pytest.skip("the shipped model is not a keypoint ensemble")
    return manifest, members


@pytest.mark.slow
def test_each_member_of_the_shipped_ensemble_can_be_continued():
    """--init MANIFEST --member i rebuilds member i: member 0 gives kp_box, the members' mean gives kp."""
    import onnxruntime as ort

    from hindsight_training.train import shipped_start
    from vision.model.manifest import model_files

    manifest, shipped_members = _shipped_ensemble()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 192, 192)).astype(np.float32)
    x = np.ascontiguousarray(np.repeat(np.repeat(x[:, :, ::16, ::16], 16, axis=2), 16, axis=3))  # smooth blocks
    session = ort.InferenceSession(str(model_files(manifest)["keypoints"]), providers=["CPUExecutionProvider"])
    kp, kp_box = session.run(["kp", "kp_box"], {session.get_inputs()[0].name: x})
    outputs, summaries = [], []
    members = len(shipped_members)
    for member in range(members):
        net, summary = shipped_start(manifest, "keypoints", member)
        with torch.no_grad():
            outputs.append(net.eval()(torch.from_numpy(x)).numpy())
        summaries.append(summary)
    scale = float(np.abs(kp).max())
    np.testing.assert_allclose(outputs[0], kp_box, atol=1e-3 * scale)
    np.testing.assert_allclose(np.mean(outputs, axis=0), kp, atol=1e-3 * scale)
    assert [s["member"] for s in summaries] == list(range(members))
    assert summaries[1]["skips"] and not summaries[0].get("skips")  # each member's own training summary
    assert summaries[2]["backbone"] == "movenet-lightning"  # 0.7's third member


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "pick the one to continue with --member 0..{last}"),
        (["--member", "{members}"], "--member {members}:"),
    ],
)
def test_an_ensemble_without_a_valid_member_stops_with_one_line(tmp_path, argv, needle):
    from hindsight_training.train import main

    manifest, shipped_members = _shipped_ensemble()
    members = len(shipped_members)
    argv = [a.format(members=members) for a in argv]
    needle = needle.format(last=members - 1, members=members)
    with pytest.raises(SystemExit) as stop:
        main(["--task", "keypoints", "--init", str(manifest), "--out", str(tmp_path / "run"), *argv])
    message = str(stop.value)
    assert message.startswith("error: ") and needle in message and "\n" not in message
    assert not (tmp_path / "run").exists()


def test_member_without_a_manifest_stops_with_one_line(tmp_path):
    from hindsight_training.train import main

    with pytest.raises(SystemExit) as stop:
        main(["--task", "keypoints", "--member", "1", "--out", str(tmp_path / "run")])
    assert str(stop.value).startswith("error: --member picks a member of a shipped keypoint ensemble")


@pytest.mark.slow
def test_a_run_with_ema_exports_the_average_and_keeps_both_figures(tmp_path):
    from hindsight_training.train import main
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    out = tmp_path / "run"
    argv = ["--task", "keypoints", "--minutes", "0.1", "--eval-every", "100", "--kp-batch", "4", "--lr", "1e-2"]
    main([*argv, "--crop-sizes", "128", "--ema", "0.9", "--threads", "1", "--out", str(out)])
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    # the best checkpoint's network is the average; the trained weights have moved away from it
    for name, value in best["ema"].items():
        torch.testing.assert_close(best["model"][name], value)
    name = next(k for k, v in last["model"].items() if k.startswith("kp_head") and v.dtype.is_floating_point)
    assert not torch.allclose(last["model"][name], last["ema"][name])
    # the plain keys describe the exported (averaged) weights, the trained ones are kept apart
    metrics = best["metrics"]
    assert {"val_gt_box_hind_pck10", "trained_val_gt_box_hind_pck10"} <= set(metrics)
    assert best["summary"]["ema_decay"] == 0.9
    assert (out / "dog_keypoints.onnx").is_file()


def test_a_step_budget_stops_at_its_step_and_a_resume_finishes_it(tmp_path):
    from hindsight_training.train import main
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    out = tmp_path / "run"
    argv = ["--task", "keypoints", "--eval-every", "100", "--kp-batch", "2", "--crop-sizes", "128"]
    argv += ["--threads", "1", "--out", str(out)]
    main([*argv, "--steps", "3"])
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert last["step"] == 3
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    assert best["summary"]["steps"] == 3 and best["summary"]["budget"] == {"steps": 3}
    main([*argv, "--steps", "5", "--resume"])  # a larger budget continues to its end
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert last["step"] == 5
    # the schedule followed the steps: the last update (step 4 of 5) took the rate for 4/5 of the budget
    head_rate = last["optim"]["param_groups"][0]["lr"]
    assert head_rate == pytest.approx(1e-3 * progress_schedule(4 / 5, 4)[0], rel=1e-6)


def test_the_training_summary_names_the_weights_a_fresh_run_starts_from():
    assert pretrained_source("movenet-lightning") == "MoveNet Lightning (human pose)"
    assert pretrained_source("efficientnet-lite2") == "ImageNet"
    assert pretrained_source(None) == "ImageNet"  # the detector


def test_skip_connections_are_refused_for_movenet_which_has_its_pyramid(tmp_path):
    from hindsight_training.train import main

    with pytest.raises(SystemExit, match="MoveNet has its pyramid"):
        main(["--task", "keypoints", "--backbone", "movenet-lightning", "--skips", "--out", str(tmp_path)])


@pytest.mark.slow
def test_a_continued_member_is_exported_as_the_network_it_is(tmp_path):
    """Continuing the MoveNet member records its backbone (not the --backbone default), so export rebuilds it."""
    from hindsight_training.export import _load_checkpoint
    from hindsight_training.movenet import MoveNetKeypointNet
    from hindsight_training.train import main
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    manifest, members = _shipped_ensemble()
    movenet = [i for i, m in enumerate(members) if m.get("backbone") == "movenet-lightning"]
    if not movenet:
        pytest.skip("the shipped model has no MoveNet member")
    out = tmp_path / "run"
    argv = ["--task", "keypoints", "--init", str(manifest), "--member", str(movenet[0]), "--minutes", "0.05"]
    main([*argv, "--eval-every", "100", "--kp-batch", "2", "--crop-sizes", "192", "--threads", "1", "--out", str(out)])
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    assert best["summary"]["backbone"] == "movenet-lightning"
    net, _ = _load_checkpoint("keypoints", out / "best.pt")  # loads the weights strictly
    assert isinstance(net, MoveNetKeypointNet)
