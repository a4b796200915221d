"""How NTU RGB+D 120 performers execute the target classes: variants with their own style, tempo and amplitude.

This is the kinematic half of the domain gap (paper, section 3): the same action names as the prior's vocabulary, done
differently. Side kicks come from a fighting stance with a guard; running on the spot is faster with pumping arms;
"stretch oneself" is mostly upper-body variants the prior rarely shows (interlaced hands pushed up or forward, a back
arch, a one-arm cross-body stretch, a chest opener). Some variants are deliberate look-alikes of other classes (a small
shuffle for running, a low kick), which is what makes a few-shot classifier need more than 10 examples.

A variant is `render(rng, tempo, amplitude, side, fps) -> (Track, params)`; `tempo` > 1 is faster, `amplitude` > 1
bigger. Each class lists (variant, base weight); `difficulty` blends the weights toward uniform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kinemic.synthetic.body import Track
from kinemic.synthetic.curves import Params, TrackBuilder, pulse, side_sign, uniform
from kinemic.synthetic.primitives import guard_arms, render, sample

VariantFn = Callable[[np.random.Generator, float, float, str, float], tuple[Track, Params]]


@dataclass(frozen=True)
class TargetClass:
    tag: str
    name: str
    variants: tuple[tuple[str, float], ...]  # (variant name, base weight)

    def weights(self, difficulty: float) -> np.ndarray:
        base = np.array([w for _, w in self.variants], dtype=np.float64)
        base /= base.sum()
        return (1.0 - difficulty) * base + difficulty / len(base)


# --------------------------------------------------------------------------------------------------------------------
# A099 running on the spot, A100 butt kicks
# --------------------------------------------------------------------------------------------------------------------


def _in_place(rng, tempo, amp, fps, *, cadence, hip, knee, swing, elbow, lean=4.0, ankle=20.0, bounce=0.03):
    p = {"cadence": tempo * uniform(rng, *cadence), "hip": amp * uniform(rng, *hip), "knee": amp * uniform(rng, *knee),
         "arm_swing": amp * uniform(rng, *swing), "elbow": uniform(rng, *elbow), "lean": lean, "ankle": ankle,
         "bounce": bounce, "duration": uniform(rng, 1.6, 3.2), "phase": float(rng.choice([0.0, np.pi]))}
    return render("jog_in_place", p, fps), p


def pump_jog(rng, tempo, amp, side, fps):
    return _in_place(rng, tempo, amp, fps, cadence=(2.8, 3.5), hip=(20, 35), knee=(40, 65), swing=(25, 40),
                     elbow=(85, 100))


def high_knee_run(rng, tempo, amp, side, fps):
    return _in_place(rng, tempo, amp, fps, cadence=(2.6, 3.3), hip=(55, 80), knee=(75, 100), swing=(30, 50),
                     elbow=(80, 95))


def shuffle_run(rng, tempo, amp, side, fps):
    return _in_place(rng, tempo, amp, fps, cadence=(3.0, 3.9), hip=(6, 16), knee=(20, 40), swing=(8, 20),
                     elbow=(50, 90), ankle=35.0, bounce=0.015)


def sprint_arms(rng, tempo, amp, side, fps):
    return _in_place(rng, tempo, amp, fps, cadence=(3.2, 3.9), hip=(30, 45), knee=(55, 85), swing=(45, 65),
                     elbow=(88, 95), lean=12.0)


def march_in_place(rng, tempo, amp, side, fps):
    """Slow, walking-like running on the spot: straight arms, no bounce (close to the prior's marching)."""
    return _in_place(rng, tempo, amp, fps, cadence=(1.7, 2.3), hip=(35, 60), knee=(45, 70), swing=(20, 35),
                     elbow=(5, 25), bounce=0.0)


def boxer_shuffle(rng, tempo, amp, side, fps):
    """Light bouncing steps with the fists up, like a boxer: shares the guard with the fighting side kicks."""
    track, p = _in_place(rng, tempo, amp, fps, cadence=(3.0, 3.8), hip=(10, 22), knee=(25, 45), swing=(0, 6),
                         elbow=(0, 5), ankle=25.0, bounce=0.025)
    b = TrackBuilder((len(track) - 1) / fps, fps)
    guard_arms(b)
    track.add(b.build(ramp=0.25), 0)
    return track, {**p, "arms": "guard"}


def heel_flick(rng, tempo, amp, side, fps):
    return _in_place(rng, tempo, amp, fps, cadence=(2.6, 3.4), hip=(0, 12), knee=(95, 135), swing=(10, 30),
                     elbow=(70, 100), ankle=30.0)


def hands_on_hips_butt_kicks(rng, tempo, amp, side, fps):
    track, p = _in_place(rng, tempo, amp, fps, cadence=(2.4, 3.2), hip=(0, 10), knee=(105, 135), swing=(0, 4),
                         elbow=(70, 80), ankle=30.0)
    b = TrackBuilder((len(track) - 1) / fps, fps)
    b.pair("shoulder", z=25).pair("elbow", z=20)
    track.add(b.build(ramp=0.2), 0)
    return track, {**p, "hands": "hips"}


# --------------------------------------------------------------------------------------------------------------------
# A102 side kick
# --------------------------------------------------------------------------------------------------------------------


def _stance(track: Track, fps: float, blade: float, weight: float = 1.0) -> None:
    """Fighting stance: bladed pelvis, soft knees, feet a little apart."""
    b = TrackBuilder((len(track) - 1) / fps, fps)
    b.rot("pelvis", y=-blade * weight)
    b.spine(y=0.6 * blade * weight)
    b.pair("knee", x=12 * weight).pair("hip", x=-8 * weight, z=5 * weight)
    track.add(b.build(ramp=0.25), 0)


def _side_kick(rng, tempo, amp, side, fps, *, height, lean, reps, rep_time, guard, blade=(15, 35)):
    n = int(rng.choice(reps))
    p = {"side": side, "height": amp * uniform(rng, *height), "lean": uniform(rng, *lean), "reps": n,
         "rep_time": uniform(rng, *rep_time) / tempo, "guard": guard, "hold": uniform(rng, 0, 1)}
    p["duration"] = n * p["rep_time"] + 0.5
    track = render("side_kick", p, fps)
    if guard:
        _stance(track, fps, side_sign(side) * uniform(rng, *blade))
    return track, p


def guard_side_kick(rng, tempo, amp, side, fps):
    return _side_kick(rng, tempo, amp, side, fps, height=(50, 80), lean=(15, 35), reps=(1, 1, 2), rep_time=(0.8, 1.2),
                      guard=1.0)


def high_side_kick(rng, tempo, amp, side, fps):
    return _side_kick(rng, tempo, amp, side, fps, height=(75, 95), lean=(28, 40), reps=(1,), rep_time=(1.0, 1.4),
                      guard=1.0)


def low_side_kick(rng, tempo, amp, side, fps):
    return _side_kick(rng, tempo, amp, side, fps, height=(22, 40), lean=(4, 12), reps=(1, 2), rep_time=(0.7, 1.0),
                      guard=0.6, blade=(5, 15))


def double_side_kick(rng, tempo, amp, side, fps):
    return _side_kick(rng, tempo, amp, side, fps, height=(45, 70), lean=(12, 25), reps=(2, 3), rep_time=(0.6, 0.85),
                      guard=1.0)


def front_snap_kick(rng, tempo, amp, side, fps):
    """A performer who kicks forward rather than sideways from the guard (the label says side kick)."""
    n = int(rng.choice((1, 2)))
    p = {"side": side, "height": amp * uniform(rng, 45, 80), "lean": uniform(rng, 5, 15), "reps": n,
         "rep_time": uniform(rng, 0.7, 1.0) / tempo, "guard": 1.0}
    p["duration"] = n * p["rep_time"] + 0.5
    track = render("front_kick", p, fps)
    _stance(track, fps, side_sign(side) * uniform(rng, 15, 35))
    return track, p


def relaxed_side_kick(rng, tempo, amp, side, fps):
    """A side kick as the prior does it (no guard): the few NTU performers who do not fight."""
    return _side_kick(rng, tempo, amp, side, fps, height=(40, 75), lean=(8, 20), reps=(1,), rep_time=(1.1, 1.5),
                      guard=0.0)


# --------------------------------------------------------------------------------------------------------------------
# A104 stretch oneself
# --------------------------------------------------------------------------------------------------------------------


def _held(rng, tempo, fps, lo=1.8, hi=3.2) -> TrackBuilder:
    return TrackBuilder(uniform(rng, lo, hi) / tempo, fps)


def _hold_curve(b: TrackBuilder) -> np.ndarray:
    return pulse(b.u, 0.0, 0.35, 0.75, 1.0)


def interlaced_up(rng, tempo, amp, side, fps):
    b = _held(rng, tempo, fps)
    k = _hold_curve(b)
    b.pair("shoulder", z=(178 + 8 * amp) * k, x=-8 * k).pair("elbow", z=-15 * k).pair("wrist", x=35 * k)
    b.pair("collar", z=14 * k)
    b.spine(x=-6 * amp * k)
    b.rot("neck", x=-10 * k)
    toes = float(rng.random() < 0.3)
    b.pair("ankle", x=20 * toes * k)
    return b.build(ramp=0.2), {"toes": toes, "duration": b.duration}


def interlaced_forward(rng, tempo, amp, side, fps):
    b = _held(rng, tempo, fps)
    k = _hold_curve(b)
    b.pair("shoulder", x=-88 * k, y=-22 * k, z=5 * k).pair("elbow", x=-6 * k).pair("wrist", x=40 * k)
    b.pair("collar", z=-6 * k)
    b.spine(x=14 * amp * k)
    b.rot("neck", x=15 * k)
    return b.build(ramp=0.2), {"duration": b.duration}


def back_arch(rng, tempo, amp, side, fps):
    b = _held(rng, tempo, fps)
    k = _hold_curve(b)
    b.pair("shoulder", z=150 * k, x=20 * k).pair("elbow", x=-10 * k)
    b.spine(x=-20 * amp * k)
    b.rot("neck", x=-25 * k).rot("pelvis", x=-6 * k)
    b.pair("knee", x=8 * k)
    return b.build(ramp=0.2), {"duration": b.duration}


def cross_body(rng, tempo, amp, side, fps):
    b = _held(rng, tempo, fps)
    k = _hold_curve(b)
    b.rot("left_shoulder", x=-85 * k, y=-55 * amp * k)
    b.rot("right_shoulder", x=-55 * k, y=35 * k).rot("right_elbow", x=-105 * k)
    b.rot("head", y=20 * k)
    b.spine(y=-10 * k)
    return b.build(side=side, ramp=0.2), {"side": side, "duration": b.duration}


def chest_opener(rng, tempo, amp, side, fps):
    b = _held(rng, tempo, fps)
    k = _hold_curve(b)
    b.pair("shoulder", z=85 * k, y=30 * amp * k).pair("elbow", x=-10 * k)
    b.spine(x=-8 * k)
    b.rot("neck", x=-18 * k)
    return b.build(ramp=0.2), {"duration": b.duration}


def yawn_stretch(rng, tempo, amp, side, fps):
    b = _held(rng, tempo, fps, 2.2, 3.6)
    k = _hold_curve(b)
    sway = np.sin(2 * np.pi * 0.6 * b.t) * k
    b.pair("shoulder", z=135 * k, x=-10 * k).pair("elbow", z=70 * k)
    b.spine(x=-10 * k, z=8 * sway)
    b.rot("neck", x=-20 * k)
    return b.build(ramp=0.25), {"duration": b.duration}


def quad_stretch(rng, tempo, amp, side, fps):
    """Standing quadriceps stretch: one heel pulled to the buttock by the hand, the other arm out for balance."""
    b = _held(rng, tempo, fps, 2.0, 3.4)
    k = _hold_curve(b)
    b.rot("left_hip", x=8 * k).rot("left_knee", x=(120 + 10 * amp) * k).rot("left_ankle", x=30 * k)
    b.rot("left_shoulder", x=35 * k, z=10 * k).rot("left_elbow", x=-25 * k)
    b.rot("right_shoulder", z=-(30 + 30 * amp) * k)
    b.rot("right_knee", x=6 * k)
    b.spine(x=5 * k)
    return b.build(side=side, ramp=0.3), {"side": side, "duration": b.duration}


def forward_fold(rng, tempo, amp, side, fps):
    """Hamstring stretch: fold forward from the hips, both hands reaching to the feet."""
    b = _held(rng, tempo, fps, 2.0, 3.4)
    k = _hold_curve(b)
    depth = 70 + 20 * amp
    b.rot("pelvis", x=0.6 * depth * k).pair("hip", x=-0.6 * depth * k)
    b.spine(x=0.5 * depth * k)
    b.pair("shoulder", x=-1.05 * depth * k, y=-5 * k)
    b.rot("neck", x=10 * k)
    return b.build(ramp=0.3), {"duration": b.duration}


def shoulder_roll(rng, tempo, amp, side, fps):
    """A small stretch: shoulders rolled and neck tilted, arms nearly still."""
    b = _held(rng, tempo, fps, 2.0, 3.6)
    k = _hold_curve(b)
    roll = np.sin(2 * np.pi * 0.9 * tempo * b.t)
    b.pair("collar", z=(8 + 8 * roll) * k, y=6 * np.cos(2 * np.pi * 0.9 * tempo * b.t) * k)
    b.rot("neck", z=15 * amp * np.sin(2 * np.pi * 0.45 * tempo * b.t) * k, x=-8 * k)
    b.pair("elbow", x=-20 * k)
    return b.build(ramp=0.3), {"duration": b.duration}


def leg_swing(rng, tempo, amp, side, fps):
    """Loosening the hip: one straight leg swung out to the side a few times, hands on the hips."""
    reps = int(rng.integers(2, 4))
    b = TrackBuilder(reps * uniform(rng, 0.8, 1.1) / tempo + 0.4, fps)
    k = pulse(b.u, 0.0, 0.15, 0.85, 1.0)
    swing = np.maximum(np.sin(2 * np.pi * reps * np.clip((b.t - 0.2) / (b.duration - 0.4), 0, 1)), 0) * k
    b.rot("left_hip", z=(30 + 15 * amp) * swing, x=-10 * swing)
    b.spine(z=10 * swing)
    b.pair("shoulder", z=28 * k).pair("elbow", x=-20 * k, z=60 * k)
    return b.build(side=side, ramp=0.2), {"side": side, "reps": reps, "duration": b.duration}


def hip_opener(rng, tempo, amp, side, fps):
    """Knee raised and opened out to the side, held, arms out for balance."""
    b = _held(rng, tempo, fps, 1.8, 3.0)
    k = _hold_curve(b)
    b.rot("left_hip", x=-70 * amp * k, z=40 * k, y=25 * k).rot("left_knee", x=95 * k)
    b.pair("shoulder", z=45 * k)
    b.spine(z=8 * k)
    return b.build(side=side, ramp=0.25), {"side": side, "duration": b.duration}


def overhead_lean(rng, tempo, amp, side, fps):
    p = {"side": side, "angle": amp * uniform(rng, 15, 30), "reps": 1, "alternate": 0,
         "rep_time": uniform(rng, 1.6, 2.6) / tempo}
    p["duration"] = p["rep_time"] + 0.4
    return render("side_bend", p, fps), p


# --------------------------------------------------------------------------------------------------------------------
# the other available classes
# --------------------------------------------------------------------------------------------------------------------


def _prim(name: str, **fixed) -> VariantFn:
    """A variant that performs a prior primitive with some parameters fixed, at the performer's tempo and size."""

    def variant(rng, tempo, amp, side, fps):
        p = {**sample(name, rng), **fixed}
        if "side" in p:
            p["side"] = side
        for key in ("cadence", "freq"):
            if key in p:
                p[key] = float(p[key]) * tempo
        if "rep_time" in p:
            p["rep_time"] = float(p["rep_time"]) / tempo
            p["duration"] = int(p["reps"]) * p["rep_time"] + 0.6
        if "freq" in p and "reps" in p:
            p["duration"] = int(p["reps"]) / p["freq"] + 0.8
        for key in ("height", "size", "depth"):
            if isinstance(p.get(key), float):
                p[key] = float(p[key]) * amp
        return render(name, p, fps), p

    return variant


def fast_chest_clap(rng, tempo, amp, side, fps):
    return _prim("clap", height="chest", reps=int(rng.integers(4, 8)))(rng, tempo * 1.3, amp, side, fps)


CLASSES: dict[str, TargetClass] = {
    c.tag: c
    for c in (
        TargetClass("A099", "run on the spot",
                    (("pump_jog", 4), ("high_knee_run", 2), ("shuffle_run", 1), ("sprint_arms", 1), ("heel_flick", 1),
                     ("march_in_place", 1), ("boxer_shuffle", 1))),
        TargetClass("A102", "side kick",
                    (("guard_side_kick", 4), ("high_side_kick", 1.5), ("low_side_kick", 1), ("double_side_kick", 1.5),
                     ("relaxed_side_kick", 0.7), ("front_snap_kick", 0.7))),
        TargetClass("A104", "stretch oneself",
                    (("interlaced_up", 3), ("interlaced_forward", 2), ("back_arch", 1.5), ("cross_body", 1.5),
                     ("chest_opener", 1), ("yawn_stretch", 1), ("overhead_lean", 0.7), ("quad_stretch", 0.8),
                     ("forward_fold", 0.8), ("shoulder_roll", 0.6), ("leg_swing", 0.8), ("hip_opener", 0.8))),
        TargetClass("A010", "clapping", (("chest_clap", 3), ("fast_chest_clap", 2), ("overhead_clap", 1))),
        TargetClass("A023", "hand waving", (("shoulder_wave", 3), ("overhead_wave", 2), ("both_hands_wave", 1))),
        TargetClass("A027", "jump up", (("single_jump", 3), ("double_jump", 2))),
        TargetClass("A097", "arm circles", (("both_arm_circles", 3), ("one_arm_circles", 1))),
        TargetClass("A100", "butt kicks", (("heel_flick", 3), ("hands_on_hips_butt_kicks", 1))),
        TargetClass("A101", "cross toe touch", (("alternating_toe_touch", 3), ("single_toe_touch", 1))),
    )
}

VARIANTS: dict[str, VariantFn] = {
    "pump_jog": pump_jog, "high_knee_run": high_knee_run, "shuffle_run": shuffle_run, "sprint_arms": sprint_arms,
    "heel_flick": heel_flick, "march_in_place": march_in_place, "boxer_shuffle": boxer_shuffle,
    "hands_on_hips_butt_kicks": hands_on_hips_butt_kicks,
    "guard_side_kick": guard_side_kick, "high_side_kick": high_side_kick, "low_side_kick": low_side_kick,
    "double_side_kick": double_side_kick, "relaxed_side_kick": relaxed_side_kick, "front_snap_kick": front_snap_kick,
    "interlaced_up": interlaced_up, "interlaced_forward": interlaced_forward, "back_arch": back_arch,
    "cross_body": cross_body, "chest_opener": chest_opener, "yawn_stretch": yawn_stretch,
    "overhead_lean": overhead_lean, "quad_stretch": quad_stretch, "forward_fold": forward_fold,
    "shoulder_roll": shoulder_roll, "leg_swing": leg_swing, "hip_opener": hip_opener,
    "chest_clap": _prim("clap", height="chest"), "fast_chest_clap": fast_chest_clap,
    "overhead_clap": _prim("clap", height="overhead"),
    "shoulder_wave": _prim("wave", level="shoulder", both=0), "overhead_wave": _prim("wave", level="overhead", both=0),
    "both_hands_wave": _prim("wave", level="overhead", both=1),
    "single_jump": _prim("jump", mode="in_place", reps=1), "double_jump": _prim("jump", mode="in_place", reps=2),
    "both_arm_circles": _prim("arm_circles", arms="both"), "one_arm_circles": _prim("arm_circles", arms="one"),
    "alternating_toe_touch": _prim("toe_touch", alternate=1),
    "single_toe_touch": _prim("toe_touch", alternate=0, reps=1),
}


def habitus_track(habitus: dict[str, float], num: int, fps: float) -> Track:
    """A performer's constant bodily habits (stance width, soft knees, lean, arm carriage, head tilt) for a clip."""
    b = TrackBuilder((num - 1) / fps, fps)
    b.pair("hip", z=habitus["stance"]).pair("knee", x=habitus["knees"]).pair("hip", x=-0.5 * habitus["knees"])
    b.pair("ankle", x=-0.5 * habitus["knees"])
    b.spine(x=habitus["lean"])
    b.pair("shoulder", z=habitus["arms_out"]).pair("elbow", x=-habitus["elbows"])
    b.rot("neck", x=habitus["head"], z=habitus["head_tilt"])
    track = Track.zeros(b.n)
    track.add(b.track, 0)
    return track


# Bodily habits come in a few archetypes (plus a little individual noise): with all training clips every archetype is
# seen in every class, with 10 clips per class most are not, which is what separates the few-shot regime.
HABITUS_ARCHETYPES = (
    {"stance": 2, "knees": 0, "lean": 0, "arms_out": 2, "elbows": 5, "head": 0, "head_tilt": 0},  # upright
    {"stance": 12, "knees": 20, "lean": 6, "arms_out": 8, "elbows": 15, "head": 5, "head_tilt": 0},  # wide, soft knees
    {"stance": 4, "knees": 8, "lean": 14, "arms_out": 0, "elbows": 35, "head": 12, "head_tilt": 0},  # hunched
    {"stance": 6, "knees": 0, "lean": -8, "arms_out": 18, "elbows": 10, "head": -10, "head_tilt": 4},  # leaning back
    {"stance": 0, "knees": 4, "lean": 3, "arms_out": -3, "elbows": 45, "head": 8, "head_tilt": -6},  # arms carried bent
    {"stance": 9, "knees": 12, "lean": -3, "arms_out": 12, "elbows": 25, "head": -4, "head_tilt": 8},  # relaxed, tilted
)


def sample_habitus(rng: np.random.Generator, strength: float) -> dict[str, float]:
    """Performer habits: one archetype plus individual noise; `strength` (the target difficulty) scales both."""
    base = HABITUS_ARCHETYPES[int(rng.integers(len(HABITUS_ARCHETYPES)))]
    return {k: strength * (v + float(rng.normal(0, 2.0))) for k, v in base.items()}


# Performer energy: some perform every action small and slow, some big and fast. A lazy run on the spot resembles a
# lazy stretch more than an energetic run; with 10 clips per class the low-energy mode of a class is often unseen.
ENERGY_LEVELS = (0.55, 1.0, 1.35)


def sample_energy(rng: np.random.Generator, difficulty: float) -> float:
    probs = np.array([0.3 * difficulty, 1.0 - 0.55 * difficulty, 0.25 * difficulty])
    return float(ENERGY_LEVELS[int(rng.choice(len(ENERGY_LEVELS), p=probs / probs.sum()))])


DISTRACTORS = ("touch_face", "adjust_clothes", "look_around", "hands_on_hips", "cross_arms")


def distractor_track(rng: np.random.Generator, fps: float) -> tuple[Track, str]:
    """A short unrelated gesture NTU performers make before or after the action (fidgeting), 0.6-1.2 s."""
    kind = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
    b = TrackBuilder(uniform(rng, 0.6, 1.2), fps)
    k = pulse(b.u, 0.0, 0.3, 0.7, 1.0)
    side = "left" if rng.random() < 0.4 else "right"
    if kind == "touch_face":
        b.rot("left_shoulder", x=-45 * k, z=10 * k).rot("left_elbow", x=-135 * k)
    elif kind == "adjust_clothes":
        b.pair("shoulder", x=-20 * k, z=10 * k).pair("elbow", x=-70 * k)
        b.spine(x=10 * k)
    elif kind == "look_around":
        b.rot("head", y=35 * k).rot("neck", y=15 * k)
    elif kind == "hands_on_hips":
        b.pair("shoulder", z=28 * k).pair("elbow", x=-20 * k, z=60 * k)
    else:
        b.pair("shoulder", x=-35 * k, y=-25 * k).pair("elbow", x=-100 * k, y=-20 * k)
    return b.build(side=side, ramp=0.1), kind


def get_class(tag: str) -> TargetClass:
    if tag not in CLASSES:
        raise ValueError(f"unknown target class {tag!r}; available: {sorted(CLASSES)}")
    return CLASSES[tag]
