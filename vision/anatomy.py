"""Canonical dog keypoints and name maps from public dataset conventions.

Hindsight names every keypoint in the dog's own left/right. Public quadruped
datasets name the hind-limb joints by analogy with the human arm or leg; the
maps below translate them (Animal-Pose and AP-10K "back elbow"/"hip" is the
stifle, "back knee"/"knee" the hock).
"""

from __future__ import annotations

from typing import Final

CANONICAL_KEYPOINTS: Final[tuple[str, ...]] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "throat",
    "withers",
    "tail_base",
    "left_elbow",
    "right_elbow",
    "left_carpus",
    "right_carpus",
    "left_front_paw",
    "right_front_paw",
    "left_stifle",
    "right_stifle",
    "left_hock",
    "right_hock",
    "left_hind_paw",
    "right_hind_paw",
)
#: Number of keypoints of a dog (the length of :data:`CANONICAL_KEYPOINTS`), as the model's networks output them.
NUM_KEYPOINTS: Final[int] = len(CANONICAL_KEYPOINTS)

HIND_LIMB_KEYPOINTS: Final[tuple[str, ...]] = (
    "left_stifle",
    "right_stifle",
    "left_hock",
    "right_hock",
    "left_hind_paw",
    "right_hind_paw",
    "tail_base",
)

SKELETON: Final[tuple[tuple[str, str], ...]] = (
    ("nose", "left_eye"),
    ("nose", "right_eye"),
    ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
    ("nose", "throat"),
    ("throat", "withers"),
    ("withers", "tail_base"),
    ("withers", "left_elbow"),
    ("withers", "right_elbow"),
    ("left_elbow", "left_carpus"),
    ("right_elbow", "right_carpus"),
    ("left_carpus", "left_front_paw"),
    ("right_carpus", "right_front_paw"),
    ("tail_base", "left_stifle"),
    ("tail_base", "right_stifle"),
    ("left_stifle", "left_hock"),
    ("right_stifle", "right_hock"),
    ("left_hock", "left_hind_paw"),
    ("right_hock", "right_hind_paw"),
)


def mirror_name(name: str) -> str:
    """Return the name of the keypoint on the other side (``left_x`` <-> ``right_x``)."""
    if name.startswith("left_"):
        return "right_" + name[len("left_") :]
    if name.startswith("right_"):
        return "left_" + name[len("right_") :]
    return name


def symmetric_pairs(names: tuple[str, ...] = CANONICAL_KEYPOINTS) -> list[tuple[int, int]]:
    """Index pairs ``(left, right)`` that swap under a horizontal flip."""
    index = {n: i for i, n in enumerate(names)}
    return [(index[n], index[mirror_name(n)]) for n in names if n.startswith("left_") and mirror_name(n) in index]


#: Animal-Pose (Cao et al. 2019) names, in that dataset's order.
ANIMALPOSE_TO_CANONICAL: Final[dict[str, str]] = {
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "nose": "nose",
    "left_ear": "left_ear",
    "right_ear": "right_ear",
    "left_front_elbow": "left_elbow",
    "right_front_elbow": "right_elbow",
    "left_back_elbow": "left_stifle",
    "right_back_elbow": "right_stifle",
    "left_front_knee": "left_carpus",
    "right_front_knee": "right_carpus",
    "left_back_knee": "left_hock",
    "right_back_knee": "right_hock",
    "left_front_paw": "left_front_paw",
    "right_front_paw": "right_front_paw",
    "left_back_paw": "left_hind_paw",
    "right_back_paw": "right_hind_paw",
    "throat": "throat",
    "withers": "withers",
    "tailbase": "tail_base",
}

#: AP-10K (Yu et al. 2021) names; its "hip" on a dog is the stifle, "knee" the hock.
AP10K_TO_CANONICAL: Final[dict[str, str]] = {
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "nose": "nose",
    "neck": "throat",
    "tail_root": "tail_base",
    "left_shoulder": "left_elbow",
    "left_elbow": "left_carpus",
    "left_front_paw": "left_front_paw",
    "right_shoulder": "right_elbow",
    "right_elbow": "right_carpus",
    "right_front_paw": "right_front_paw",
    "left_hip": "left_stifle",
    "left_knee": "left_hock",
    "left_back_paw": "left_hind_paw",
    "right_hip": "right_stifle",
    "right_knee": "right_hock",
    "right_back_paw": "right_hind_paw",
}

#: StanfordExtra / Ultralytics dog-pose names.
STANFORDEXTRA_TO_CANONICAL: Final[dict[str, str]] = {
    "front_left_paw": "left_front_paw",
    "front_left_knee": "left_carpus",
    "front_left_elbow": "left_elbow",
    "rear_left_paw": "left_hind_paw",
    "rear_left_knee": "left_hock",
    "rear_left_elbow": "left_stifle",
    "front_right_paw": "right_front_paw",
    "front_right_knee": "right_carpus",
    "front_right_elbow": "right_elbow",
    "rear_right_paw": "right_hind_paw",
    "rear_right_knee": "right_hock",
    "rear_right_elbow": "right_stifle",
    "tail_start": "tail_base",
    "left_ear_base": "left_ear",
    "right_ear_base": "right_ear",
    "nose": "nose",
    "chin": "throat",
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "withers": "withers",
    "throat": "throat",
}

#: DeepLabCut SuperAnimal-Quadruped names (only those with a canonical match).
SUPERANIMAL_QUADRUPED_TO_CANONICAL: Final[dict[str, str]] = {
    "nose": "nose",
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "left_earbase": "left_ear",
    "right_earbase": "right_ear",
    "throat_base": "throat",
    "neck_base": "withers",
    "tail_base": "tail_base",
    "front_left_thai": "left_elbow",
    "front_right_thai": "right_elbow",
    "front_left_knee": "left_carpus",
    "front_right_knee": "right_carpus",
    "front_left_paw": "left_front_paw",
    "front_right_paw": "right_front_paw",
    "back_left_thai": "left_stifle",
    "back_right_thai": "right_stifle",
    "back_left_knee": "left_hock",
    "back_right_knee": "right_hock",
    "back_left_paw": "left_hind_paw",
    "back_right_paw": "right_hind_paw",
}

NAME_MAPS: Final[dict[str, dict[str, str]]] = {
    "animalpose": ANIMALPOSE_TO_CANONICAL,
    "ap10k": AP10K_TO_CANONICAL,
    "stanfordextra": STANFORDEXTRA_TO_CANONICAL,
    "superanimal_quadruped": SUPERANIMAL_QUADRUPED_TO_CANONICAL,
}


def to_canonical(name: str) -> str | None:
    """Map a keypoint name from any known convention to its canonical name, or None."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in CANONICAL_KEYPOINTS:
        return key
    for mapping in NAME_MAPS.values():
        if key in mapping:
            return mapping[key]
    return None


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def detect_convention(names: list[str] | tuple[str, ...]) -> str:
    """Name convention that explains most of ``names``: ``canonical`` or a key of :data:`NAME_MAPS`.

    Conventions disagree on some names (AP-10K's ``left_elbow`` is the carpus), so
    a file's names are mapped with one convention, the best-matching one.
    """
    keys = [_normalise(n) for n in names]
    best, best_hits = "canonical", sum(k in CANONICAL_KEYPOINTS for k in keys)
    for convention, mapping in NAME_MAPS.items():
        hits = sum(k in mapping for k in keys)
        if hits > best_hits:
            best, best_hits = convention, hits
    return best


def canonical_names(names: list[str] | tuple[str, ...]) -> list[str | None]:
    """Map a file's keypoint names to canonical names with its own convention.

    Unknown names, and later duplicates of a canonical name, map to None.
    """
    convention = detect_convention(names)
    mapping = {n: n for n in CANONICAL_KEYPOINTS} if convention == "canonical" else NAME_MAPS[convention]
    keys = [_normalise(n) for n in names]
    out: list[str | None] = [mapping.get(k) for k in keys]
    # Names outside the file's convention: any convention, if that joint is still free.
    for i, k in enumerate(keys):
        if out[i] is None and k not in mapping:
            out[i] = to_canonical(k)
    seen: set[str] = set()
    for i, canon in enumerate(out):
        if canon is not None and canon in seen:
            out[i] = None
        elif canon is not None:
            seen.add(canon)
    return out
