"""NTU RGB+D 120: sample ids, the official evaluation protocols, few-shot sampling and class names.

A sample id is `SsssCcccPpppRrrrAaaa` (setup, camera, performer, replication, action; all 1-based). The protocols are
the official ones (Shahroudy et al., CVPR 2016; Liu et al., TPAMI 2020), decided by the performer or the setup parsed
from the id. KineMIC's preprocessing (`scripts/ntu_vibe_preproc.py`) parsed the *setup* where it meant the performer, so
its "xsub" split is really "setup in the subject list"; this module does not reproduce that bug
(reference/humanml3d_vibe_ntu.md section 5).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

NUM_ACTIONS_120 = 120
NUM_ACTIONS_60 = 60
NUM_SETUPS_60 = 17
_LIMITS = {"setup": 32, "camera": 3, "performer": 106, "replication": 2, "action": NUM_ACTIONS_120}

# Official NTU RGB+D 120 cross-subject training performers (Liu et al., TPAMI 2020, "NTU RGB+D 120", section 5.1;
# the same list as pyskl `tools/data/ntu_preproc.py` and KineMIC `scripts/ntu_vibe_preproc.py`). Every other performer
# is on the test side.
XSUB120_TRAIN_PERFORMERS = frozenset({
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52, 53, 54, 55, 56,
    57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
})
# NTU RGB+D 60 cross-subject training performers (Shahroudy et al., CVPR 2016, section 4.1): the first 20 of the above.
XSUB60_TRAIN_PERFORMERS = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
XVIEW60_TRAIN_CAMERAS = frozenset({2, 3})

# protocol -> (what it needs: NTU-60 only?, human description)
PROTOCOLS = {
    "xsub120": (False, "NTU-120 cross-subject: the 53 official training performers"),
    "xset120": (False, "NTU-120 cross-setup: even setup ids train, odd test"),
    "xsub60": (True, "NTU-60 cross-subject: the 20 official training performers"),
    "xview60": (True, "NTU-60 cross-view: cameras 2 and 3 train, camera 1 test"),
}

_ID_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})(?!\d)")
_ACTION_RE = re.compile(r"^A?0*(\d+)$")


# --------------------------------------------------------------------------------------------------------------------
# ids
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class NTUId:
    """One NTU RGB+D sample id; ordering follows the id string."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int  # 1-based, as in the file name (A099 -> 99)

    def __post_init__(self) -> None:
        for name, upper in _LIMITS.items():
            value = getattr(self, name)
            if not 1 <= value <= upper:
                raise ValueError(f"{self.name}: {name} {value} is outside NTU RGB+D 120's range 1..{upper}")

    @property
    def name(self) -> str:
        return (f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
                f"R{self.replication:03d}A{self.action:03d}")

    @property
    def label(self) -> int:
        """0-based class index (pyskl, KineMIC): A099 -> 98."""
        return self.action - 1

    @property
    def tag(self) -> str:
        return action_tag(self.action)

    def __str__(self) -> str:
        return self.name


def parse_ntu_id(name: str | Path) -> NTUId:
    """Parse `S001C002P003R002A013`, also with suffixes (`..._rgb.avi`, `.npy`) or as a path.

    For a path whose file name is not an id (e.g. `.../S001C002P003R002A013_rgb/vibe_output.pkl`, VIBE's layout), the
    parent directory's name is tried next.
    """
    path = Path(name)
    for candidate in (path.name, path.parent.name):
        match = _ID_RE.match(candidate)
        if match:
            return NTUId(*(int(g) for g in match.groups()))
    raise ValueError(
        f"{str(name)!r} is not an NTU RGB+D sample id: expected SsssCcccPpppRrrrAaaa (e.g. S001C002P003R002A013), "
        "optionally followed by a suffix such as _rgb, in the file name or its directory's name"
    )


def parse_action(action: int | str) -> int:
    """A class as a 1-based action number: 99, 'A099', 'A99' and '99' all give 99."""
    if isinstance(action, bool):
        raise ValueError(f"action {action!r}: expected an action number 1..{NUM_ACTIONS_120} or a tag like 'A099'")
    if isinstance(action, int | np.integer):
        number = int(action)
    else:
        match = _ACTION_RE.match(str(action).strip())
        if not match:
            raise ValueError(f"action {action!r}: expected an action number 1..{NUM_ACTIONS_120} or a tag like 'A099'")
        number = int(match.group(1))
    if not 1 <= number <= NUM_ACTIONS_120:
        raise ValueError(f"action {action!r}: NTU RGB+D 120 classes are A001..A{NUM_ACTIONS_120:03d}")
    return number


def action_tag(action: int | str) -> str:
    return f"A{parse_action(action):03d}"


# --------------------------------------------------------------------------------------------------------------------
# protocols
# --------------------------------------------------------------------------------------------------------------------


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: expected one of {sorted(PROTOCOLS)}")


def is_training(sample: NTUId | str, protocol: str = "xsub120") -> bool:
    """Whether a sample is on the training side of an official protocol."""
    _check_protocol(protocol)
    sample = sample if isinstance(sample, NTUId) else parse_ntu_id(sample)
    ntu60_only, _ = PROTOCOLS[protocol]
    if ntu60_only and (sample.setup > NUM_SETUPS_60 or sample.action > NUM_ACTIONS_60):
        raise ValueError(f"{sample.name} is not part of NTU RGB+D 60 (setups S001-S017, actions A001-A060), "
                         f"so protocol {protocol!r} does not apply; use 'xsub120' or 'xset120'")
    if protocol == "xsub120":
        return sample.performer in XSUB120_TRAIN_PERFORMERS
    if protocol == "xset120":
        return sample.setup % 2 == 0
    if protocol == "xsub60":
        return sample.performer in XSUB60_TRAIN_PERFORMERS
    return sample.camera in XVIEW60_TRAIN_CAMERAS


def protocol_side(sample: NTUId | str, protocol: str = "xsub120") -> str:
    """'train' or 'test'."""
    return "train" if is_training(sample, protocol) else "test"


def samples_table(sample_ids: Iterable[str | NTUId]) -> pd.DataFrame:
    """One row per sample: sample_id, setup, camera, performer, replication, action (1-based)."""
    ids = [s if isinstance(s, NTUId) else parse_ntu_id(s) for s in sample_ids]
    return pd.DataFrame(
        {
            "sample_id": [s.name for s in ids],
            "setup": [s.setup for s in ids],
            "camera": [s.camera for s in ids],
            "performer": [s.performer for s in ids],
            "replication": [s.replication for s in ids],
            "action": [s.action for s in ids],
        }
    )


# --------------------------------------------------------------------------------------------------------------------
# few-shot sampling
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FewShotConfig:
    """Which classes, how many shots, from which protocol's training side, with which seed.

    Classes are given as action numbers or tags (99 or 'A099') and stored as sorted 1-based numbers.
    """

    classes: tuple[int, ...] = (99, 102, 104)  # running on the spot, side kick, stretch oneself (the paper's)
    shots: int = 10
    protocol: str = "xsub120"
    seed: int = 0

    def __post_init__(self) -> None:
        numbers = [parse_action(c) for c in self.classes]
        if not numbers:
            raise ValueError("classes: give at least one class")
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"classes={list(self.classes)}: a class is listed twice")
        object.__setattr__(self, "classes", tuple(sorted(numbers)))
        if isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 1:
            raise ValueError(f"shots={self.shots!r}: expected a positive integer")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        _check_protocol(self.protocol)


@dataclass(frozen=True)
class FewShotSplit:
    """The drawn few-shot set and the matching test set, per class (ids sorted)."""

    config: FewShotConfig
    fewshot: dict[int, tuple[str, ...]] = field(default_factory=dict)
    test: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def fewshot_ids(self) -> list[str]:
        return sorted(i for ids in self.fewshot.values() for i in ids)

    @property
    def test_ids(self) -> list[str]:
        return sorted(i for ids in self.test.values() for i in ids)


def _parse_unique(sample_ids: Iterable[str | NTUId]) -> list[NTUId]:
    parsed = [s if isinstance(s, NTUId) else parse_ntu_id(s) for s in sample_ids]
    counts = pd.Series([s.name for s in parsed], dtype=object).value_counts()
    duplicates = sorted(counts.index[counts > 1])
    if duplicates:
        raise ValueError(f"duplicate sample ids: {duplicates[:10]}{' ...' if len(duplicates) > 10 else ''}")
    return parsed


def sample_fewshot(sample_ids: Iterable[str | NTUId], config: FewShotConfig) -> FewShotSplit:
    """Draw `shots` samples per class from the protocol's training side; the test set is the evaluation side.

    Each class draws from its own generator seeded by (seed, action), over its candidates in sorted id order, so a
    class's few-shot set depends only on the seed and its own candidates, not on the order of `sample_ids` or on which
    other classes are requested.
    """
    parsed = _parse_unique(sample_ids)
    present = sorted({s.action for s in parsed})
    fewshot, test = {}, {}
    for action in config.classes:
        members = sorted((s for s in parsed if s.action == action), key=lambda s: s.name)
        if not members:
            raise ValueError(
                f"class {action_tag(action)} ({action_name(action)}) has no samples among the {len(parsed)} given; "
                f"classes present: {[action_tag(a) for a in present][:20]}"
            )
        pool = [s.name for s in members if is_training(s, config.protocol)]
        if len(pool) < config.shots:
            raise ValueError(
                f"class {action_tag(action)} ({action_name(action)}) has {len(pool)} sample(s) on the training side "
                f"of {config.protocol}, fewer than shots={config.shots}"
            )
        rng = np.random.default_rng([config.seed, action])
        picked = rng.choice(len(pool), size=config.shots, replace=False)
        fewshot[action] = tuple(sorted(pool[i] for i in picked))
        test[action] = tuple(s.name for s in members if not is_training(s, config.protocol))
        log.info("%s: %d few-shot of %d training, %d test", action_tag(action), config.shots, len(pool),
                 len(test[action]))
    return FewShotSplit(config, fewshot, test)


def assign_splits(table: pd.DataFrame, config: FewShotConfig, id_column: str = "sample_id") -> pd.DataFrame:
    """A copy of `table` with a 'split' column: 'fewshot', 'test' or 'unused' (other classes, undrawn training)."""
    if id_column not in table.columns:
        raise ValueError(f"id_column={id_column!r} is not a column of the table (columns: {list(table.columns)})")
    split = sample_fewshot(table[id_column].tolist(), config)
    labels = dict.fromkeys(split.test_ids, "test") | dict.fromkeys(split.fewshot_ids, "fewshot")
    out = table.copy()
    out["split"] = [labels.get(parse_ntu_id(i).name, "unused") for i in table[id_column]]
    return out


# --------------------------------------------------------------------------------------------------------------------
# class names
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NTUAction:
    action: int  # 1-based
    name: str
    group: str | None = None
    captions: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return action_tag(self.action)

    @property
    def label(self) -> int:
        return self.action - 1


# Official class names, A001..A120, from the NTU RGB+D README (github.com/shahroudy/NTURGB-D); identical to pyskl's
# `tools/data/label_map/nturgbd_120.txt`. A fallback for when `ntu_metadata.json` is not at hand.
NTU120_ACTION_NAMES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw", "sitting down",
    "standing up (from sitting position)", "clapping", "reading", "writing", "tear up paper", "wear jacket",
    "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something", "reach into pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone", "playing with phone/tablet",
    "typing on a keyboard", "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person", "point finger at the other person",
    "hugging other person", "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other", "put on headphone", "take off headphone",
    "shoot at the basket", "bounce ball", "tennis bat swing", "juggling table tennis balls", "hush (quite)",
    "flick hair", "thumb up", "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle", "sniff (smell)",
    "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube", "apply cream on face",
    "apply cream on hand back", "put on bag", "take off bag", "put something into a bag",
    "take something out of a bag", "open a box", "move heavy objects", "shake fist", "throw up cap/hat",
    "hands up (both hands)", "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit other person with something", "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person", "follow other person",
    "whisper in other person's ear", "exchange things with other person", "support somebody with hand",
    "finger-guessing game (playing rock-paper-scissors)",
)
assert len(NTU120_ACTION_NAMES) == NUM_ACTIONS_120


def action_name(action: int | str) -> str:
    """The official name of a class (built-in list)."""
    return NTU120_ACTION_NAMES[parse_action(action) - 1]


def load_ntu_metadata(path: str | Path) -> dict[int, NTUAction]:
    """Read `ntu_metadata.json` ({"groups": [...], "actions": [{"action", "tag", "group", "captions"}, ...]}).

    Returns {1-based action number: NTUAction}. Its names are KineMIC's wording ("run on the spot"), which differ
    from the official ones in places; its captions are the class prompts.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NTU metadata not found: {path} (KineMIC ships it as data/ntu_metadata.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("actions"), list):
        raise ValueError(f'{path}: expected {{"groups": [...], "actions": [...]}}')
    groups = data.get("groups")
    actions: dict[int, NTUAction] = {}
    for i, entry in enumerate(data["actions"]):
        where = f"{path}: actions[{i}]"
        if not isinstance(entry, dict) or not {"action", "tag"} <= set(entry):
            raise ValueError(f"{where}: expected an object with 'action', 'tag', 'group', 'captions', got {entry!r}")
        try:
            number = parse_action(entry["tag"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        if number in actions:
            raise ValueError(f"{where}: tag {entry['tag']} appears twice")
        captions = entry.get("captions", [])
        if not isinstance(captions, list) or not all(isinstance(c, str) and c.strip() for c in captions):
            raise ValueError(f"{where} ({entry['tag']}): captions must be a list of non-empty strings")
        group = entry.get("group")
        if groups is not None and group is not None and group not in groups:
            raise ValueError(f"{where} ({entry['tag']}): group {group!r} is not one of {groups}")
        actions[number] = NTUAction(number, str(entry["action"]), group, tuple(captions))
    return actions
