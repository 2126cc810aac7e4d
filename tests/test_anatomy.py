from vision.anatomy import (
    AP10K_TO_CANONICAL,
    CANONICAL_KEYPOINTS,
    canonical_names,
    detect_convention,
    mirror_name,
    symmetric_pairs,
)


def test_canonical_list_is_the_documented_twenty():
    assert len(CANONICAL_KEYPOINTS) == 20
    assert CANONICAL_KEYPOINTS[0] == "nose" and CANONICAL_KEYPOINTS[-1] == "right_hind_paw"


def test_mirror_and_pairs():
    assert mirror_name("left_hock") == "right_hock"
    assert mirror_name("tail_base") == "tail_base"
    pairs = symmetric_pairs()
    assert len(pairs) == 8
    for a, b in pairs:
        assert CANONICAL_KEYPOINTS[a].replace("left_", "") == CANONICAL_KEYPOINTS[b].replace("right_", "")


def test_ap10k_hip_is_stifle_and_knee_is_hock():
    assert AP10K_TO_CANONICAL["left_hip"] == "left_stifle"
    assert AP10K_TO_CANONICAL["right_knee"] == "right_hock"


def test_convention_is_chosen_per_file_so_ap10k_elbow_is_carpus():
    ap10k = list(AP10K_TO_CANONICAL)
    assert detect_convention(ap10k) == "ap10k"
    names = canonical_names(ap10k)
    assert names[ap10k.index("left_elbow")] == "left_carpus"
    assert len([n for n in names if n]) == len(set(n for n in names if n))


def test_animalpose_names_map():
    names = canonical_names(["left_back_elbow", "right_back_knee", "tailbase", "left_back_paw"])
    assert names == ["left_stifle", "right_hock", "tail_base", "left_hind_paw"]


def test_unknown_names_map_to_none():
    assert canonical_names(["banana", "left_hind_paw"]) == [None, "left_hind_paw"]
