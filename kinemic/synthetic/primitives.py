"""The action vocabulary: parameterised primitives written as joint-angle curves.

Each `Primitive` has a semantic description (what captions say about it), a sampler of its parameters in the prior
corpus's own style (tempo, amplitude, side, repetitions, duration), and a renderer `render(params, fps) -> Track`
of deltas from the rest pose, enveloped so that consecutive segments blend. Renderers read optional style keys with
defaults (e.g. `guard` arms around kicks, `arm_style` of running in place), which the NTU-like target set uses to
perform the same actions differently: the domain gap of the paper's section 3 lives in those parameters.

Parameters are plain dicts of floats/ints/strings so they can be stored beside the data (`primitives.parquet`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kinemic.synthetic import gestures as g
from kinemic.synthetic.body import Track
from kinemic.synthetic.curves import (
    TWO_PI,
    Params,
    TrackBuilder,
    half_wave,
    pulse,
    random_side,
    rep_phase,
    side_sign,
    smoothstep,
    timed,
    uniform,
)


@dataclass(frozen=True)
class Primitive:
    """One action of the vocabulary."""

    name: str
    description: str
    category: str  # idle, locomotion, cardio, martial, upper_body, stretch, gesture
    sided: bool
    sample: Callable[[np.random.Generator], Params]
    render: Callable[[Params, float], Track]


def guard_arms(b: TrackBuilder, weight: np.ndarray | float = 1.0, height: float = 1.0) -> None:
    """Fighting-stance guard: upper arms forward-down, elbows sharply bent, fists near the chin."""
    w = np.asarray(weight)
    b.pair("shoulder", x=-38.0 * height * w, y=-12.0 * w, z=14.0 * w)
    b.pair("elbow", x=-118.0 * w, z=-8.0 * w)
    b.pair("wrist", x=-10.0 * w)
    b.spine(x=6.0 * w)


# --------------------------------------------------------------------------------------------------------------------
# idle and locomotion
# --------------------------------------------------------------------------------------------------------------------


def _sample_idle(rng):
    return {"duration": uniform(rng, 0.5, 2.5), "sway": uniform(rng, 0.3, 1.2), "phase": uniform(rng, 0, TWO_PI),
            "look": uniform(rng, -25, 25)}


def _render_idle(p, fps):
    b = TrackBuilder(p["duration"], fps)
    w, ph, t = p.get("sway", 1.0), p.get("phase", 0.0), b.t
    b.rot("pelvis", z=1.5 * w * np.sin(TWO_PI * 0.3 * t + ph))
    b.spine(x=1.5 * np.sin(TWO_PI * 0.22 * t + 1.3 * ph), z=-1.2 * w * np.sin(TWO_PI * 0.3 * t + ph))
    b.rot("head", y=p.get("look", 0.0) * smoothstep(b.u * 2.0 - 0.5) * smoothstep(1.5 - b.u * 2.0))
    b.pair("shoulder", x=2.0 * np.sin(TWO_PI * 0.2 * t + ph), z=4.0)
    b.pair("elbow", x=-10.0)
    return b.build(ramp=0.3)


def _sample_walk(rng):
    direction = str(rng.choice(["forward", "forward", "forward", "backward", "sideways"]))
    cadence = uniform(rng, 1.5, 2.2)
    turn = 0.0
    if direction == "forward" and rng.random() < 0.3:
        turn = float(rng.choice([-1, 1]) * rng.uniform(30, 75))
    steps = int(rng.integers(3, 11))
    return {"direction": direction, "side": random_side(rng), "cadence": cadence, "stride": uniform(rng, 15, 28),
            "turn": turn, "steps": steps, "duration": steps / cadence + 0.4}


def _render_walk(p, fps):
    b = TrackBuilder(p["duration"], fps)
    phi = np.pi * p["cadence"] * b.t
    amp, knee = p["stride"], p.get("knee", 45.0 + p["stride"])
    swing_l, swing_r = np.maximum(np.cos(phi), 0) ** 1.5, np.maximum(-np.cos(phi), 0) ** 1.5
    b.rot("left_knee", x=knee * swing_l + 4).rot("right_knee", x=knee * swing_r + 4)
    b.rot("left_ankle", x=-12 * swing_l).rot("right_ankle", x=-12 * swing_r)
    direction = p["direction"]
    if direction == "sideways":  # legs spread and close; the body moves toward its left (mirrored for right)
        a = 0.55 * amp
        b.rot("left_hip", z=3 + a * np.sin(phi)).rot("right_hip", z=-3 - a * np.sin(phi))
        b.pair("shoulder", z=6 + 0.3 * a * np.sin(phi))
        b.pair("elbow", x=-12)
        return b.build(side=str(p.get("side", "left")), ramp=0.3)
    sign = 1.0 if direction == "forward" else -1.0
    hip_l = -sign * amp * np.sin(phi)
    b.rot("left_hip", x=hip_l).rot("right_hip", x=-hip_l)
    arm = p.get("arm_swing", 0.8 * amp)
    b.rot("left_shoulder", x=-arm / amp * hip_l, z=5).rot("right_shoulder", x=arm / amp * hip_l, z=-5)
    b.pair("elbow", x=-15)
    b.spine(x=3 * sign, y=-0.25 * hip_l)
    b.track.yaw_rate += np.radians(p.get("turn", 0.0))
    return b.build(ramp=0.3)


def _sample_run(rng):
    cadence, steps = uniform(rng, 2.5, 3.2), int(rng.integers(4, 14))
    turn = float(rng.choice([-1, 1]) * rng.uniform(30, 60)) if rng.random() < 0.2 else 0.0
    return {"cadence": cadence, "stride": uniform(rng, 28, 40), "steps": steps, "turn": turn,
            "duration": steps / cadence + 0.4}


def _render_run(p, fps):
    b = TrackBuilder(p["duration"], fps)
    phi = np.pi * p["cadence"] * b.t
    amp = p["stride"]
    hip_l = -amp * np.sin(phi) - 10
    swing_l, swing_r = np.maximum(np.cos(phi), 0) ** 1.2, np.maximum(-np.cos(phi), 0) ** 1.2
    b.rot("left_hip", x=hip_l).rot("right_hip", x=amp * np.sin(phi) - 10)
    b.rot("left_knee", x=95 * swing_l + 15).rot("right_knee", x=95 * swing_r + 15)
    b.rot("left_ankle", x=-10 * swing_l).rot("right_ankle", x=-10 * swing_r)
    b.rot("left_shoulder", x=1.1 * amp * np.sin(phi), z=6).rot("right_shoulder", x=-1.1 * amp * np.sin(phi), z=-6)
    b.pair("elbow", x=-85)
    b.spine(x=10, y=0.3 * amp * np.sin(phi))
    air = np.maximum(-np.cos(2 * phi), 0.0)
    b.track.lift += 0.05 * air**1.5
    b.track.flight += np.clip(2 * air - 0.4, 0, 1)
    b.track.velocity[:, 1] += 2.0 * air
    b.track.yaw_rate += np.radians(p.get("turn", 0.0))
    return b.build(ramp=0.35)


def _render_turn(p, fps):
    b = TrackBuilder(p["duration"], fps)
    sign = 1.0 if p["direction"] == "counterclockwise" else -1.0
    profile = np.sin(np.pi * np.clip(b.u, 0, 1)) ** 2  # integrates to duration / 2
    b.track.yaw_rate += sign * np.radians(p["angle"]) * profile / (0.5 * p["duration"])
    phi = np.pi * 2.0 * b.t
    b.rot("left_hip", x=-14 * half_wave(phi)).rot("right_hip", x=-14 * half_wave(phi + np.pi))
    b.rot("left_knee", x=28 * half_wave(phi)).rot("right_knee", x=28 * half_wave(phi + np.pi))
    b.pair("elbow", x=-15)
    b.rot("head", y=sign * 15 * np.sin(np.pi * b.u))
    # The envelope would shrink the turn angle: compensate so the body turns by the full angle.
    return b.build(ramp=0.05)


def _sample_turn(rng):
    return {"direction": str(rng.choice(["clockwise", "counterclockwise"])),
            "angle": float(rng.choice([90, 180, 180, 360])), "duration": uniform(rng, 1.2, 2.8)}


# --------------------------------------------------------------------------------------------------------------------
# cardio in place
# --------------------------------------------------------------------------------------------------------------------


def _render_in_place(p, fps):
    """Running in place and its cousins (high knees, butt kicks): alternating leg lifts, pumping arms, a bounce."""
    b = TrackBuilder(p["duration"], fps)
    phi = np.pi * p["cadence"] * b.t + p.get("phase", 0.0)
    lift_l, lift_r = half_wave(phi, 1.2), half_wave(phi + np.pi, 1.2)
    hip, knee = p["hip"], p["knee"]
    for side, lift in (("left", lift_l), ("right", lift_r)):
        b.rot(f"{side}_hip", x=-hip * lift)
        b.rot(f"{side}_knee", x=knee * lift + 5)
        b.rot(f"{side}_ankle", x=p.get("ankle", 20.0) * lift)
    swing, elbow = p["arm_swing"], p["elbow"]
    b.rot("left_shoulder", x=swing * np.sin(phi), z=p.get("arm_out", 8.0))
    b.rot("right_shoulder", x=-swing * np.sin(phi), z=-p.get("arm_out", 8.0))
    b.pair("elbow", x=-elbow)
    b.spine(x=p.get("lean", 4.0), y=0.15 * swing * np.sin(phi))
    b.track.lift += p.get("bounce", 0.03) * 0.5 * (1 - np.cos(2 * phi))
    return b.build(ramp=0.3)


def _sample_jog_in_place(rng):
    return {"cadence": uniform(rng, 2.0, 2.7), "hip": uniform(rng, 25, 45), "knee": uniform(rng, 45, 75),
            "arm_swing": uniform(rng, 15, 30), "elbow": uniform(rng, 40, 75), "bounce": uniform(rng, 0.02, 0.045),
            "duration": uniform(rng, 2.0, 6.0)}


def _sample_high_knees(rng):
    return {"cadence": uniform(rng, 2.2, 3.0), "hip": uniform(rng, 65, 90), "knee": uniform(rng, 85, 110),
            "arm_swing": uniform(rng, 25, 45), "elbow": uniform(rng, 70, 95), "bounce": uniform(rng, 0.03, 0.05),
            "duration": uniform(rng, 2.0, 5.0)}


def _sample_butt_kicks(rng):
    return {"cadence": uniform(rng, 2.2, 3.0), "hip": uniform(rng, 0, 12), "knee": uniform(rng, 105, 135),
            "ankle": 30.0, "arm_swing": uniform(rng, 10, 25), "elbow": uniform(rng, 60, 90),
            "bounce": uniform(rng, 0.02, 0.04), "duration": uniform(rng, 2.0, 5.0)}


def _sample_jump(rng):
    reps = int(rng.integers(1, 4))
    return timed({"mode": str(rng.choice(["in_place", "in_place", "forward"])), "reps": reps,
                  "height": uniform(rng, 0.12, 0.35), "crouch": uniform(rng, 40, 80),
                  "rep_time": uniform(rng, 1.0, 1.4)}, 0.3)


def _render_jump(p, fps):
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    active = (b.t - 0.15) / (p["duration"] - 0.3)
    _, u = rep_phase(active, reps)
    inside = (active >= 0) & (active < 1)
    crouch = inside * (pulse(u, 0.0, 0.25, 0.3, 0.42) + 0.7 * pulse(u, 0.6, 0.7, 0.74, 0.95))
    s = (u - 0.4) / 0.22
    air = inside * np.where((s > 0) & (s < 1), 4 * s * (1 - s), 0.0)
    d = p["crouch"]
    b.rot("pelvis", x=0.3 * d * crouch)
    b.pair("hip", x=-1.3 * d * crouch - 8 * air)
    b.pair("knee", x=1.4 * d * crouch + 10 * air)
    b.pair("ankle", x=-0.4 * d * crouch + 25 * air)
    b.spine(x=0.2 * d * crouch)
    b.pair("shoulder", x=p.get("arm_back", 45.0) * crouch - p.get("arm_up", 120.0) * air, z=6)
    b.pair("elbow", x=-15)
    b.track.lift += p["height"] * air
    b.track.flight += np.clip(3 * air, 0, 1)
    if p.get("mode") == "forward":
        b.track.velocity[:, 1] += 1.4 * air
    return b.build(ramp=0.15)


# --------------------------------------------------------------------------------------------------------------------
# martial arts
# --------------------------------------------------------------------------------------------------------------------


def _sample_kick(rng):
    reps = int(rng.choice([1, 1, 2, 3]))
    return timed({"side": random_side(rng, 0.45), "height": uniform(rng, 40, 85), "reps": reps,
                  "rep_time": uniform(rng, 1.1, 1.6), "guard": 0.0, "lean": uniform(rng, 8, 25)}, 0.4)


def _kick_phases(b: TrackBuilder, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """(leg lifted, leg extended) weights over the repetitions of a kick."""
    reps = int(p["reps"])
    active = (b.t - 0.2) / (b.duration - 0.4)
    _, u = rep_phase(active, reps)
    inside = (active >= 0) & (active < 1)
    lifted = inside * pulse(u, 0.02, 0.28, 0.72, 0.96)
    extended = inside * pulse(u, 0.28, 0.42, 0.55 + 0.1 * p.get("hold", 0.0), 0.72)
    return lifted, extended


def _kick_builder(p: Params, fps: float) -> TrackBuilder:
    b = TrackBuilder(p["duration"], fps)
    if p.get("guard", 0.0):
        guard_arms(b, p["guard"])
    else:
        b.pair("elbow", x=-12)
    return b


def _render_side_kick(p, fps):
    b = _kick_builder(p, fps)
    c, e = _kick_phases(b, p)
    h = p["height"]
    b.rot("left_hip", x=-60 * c * (1 - 0.8 * e), y=-25 * c * (1 - e), z=h * e + 20 * c)
    b.rot("left_knee", x=105 * c * (1 - 0.92 * e))
    b.rot("left_ankle", x=-15 * c)
    b.rot("right_knee", x=12 * c)
    b.rot("pelvis", z=0.45 * p["lean"] * e, y=-10 * c)
    b.spine(z=p["lean"] * e)
    if not p.get("guard", 0.0):  # arms swing out for balance
        b.rot("left_shoulder", z=25 * e, x=-10 * c).rot("right_shoulder", z=-35 * e)
    return b.build(side=str(p["side"]), ramp=0.25)


def _render_front_kick(p, fps):
    b = _kick_builder(p, fps)
    c, e = _kick_phases(b, p)
    h = p["height"]
    b.rot("left_hip", x=-65 * c - (h - 40) * e)
    b.rot("left_knee", x=100 * c * (1 - 0.9 * e))
    b.rot("left_ankle", x=10 * e - 10 * c)
    b.rot("right_knee", x=10 * c)
    b.spine(x=-0.25 * p["lean"] * e)
    if not p.get("guard", 0.0):
        b.pair("shoulder", x=-15 * c, z=15 * e)
    return b.build(side=str(p["side"]), ramp=0.25)


def _render_back_kick(p, fps):
    b = _kick_builder(p, fps)
    c, e = _kick_phases(b, p)
    h = p["height"]
    b.rot("left_hip", x=-30 * c * (1 - e) + (0.6 * h) * e)
    b.rot("left_knee", x=100 * c * (1 - 0.8 * e))
    b.rot("pelvis", x=0.6 * p["lean"] * e)
    b.rot("right_hip", x=-0.6 * p["lean"] * e)
    b.spine(x=p["lean"] * e)
    b.rot("neck", x=-15 * e)
    if not p.get("guard", 0.0):
        b.pair("shoulder", x=-20 * e, z=20 * e)
    return b.build(side=str(p["side"]), ramp=0.25)


def _sample_punch(rng):
    reps = int(rng.integers(1, 7))
    return timed({"side": random_side(rng), "style": str(rng.choice(["jab", "jab", "hook"])), "reps": reps,
                   "alternate": int(rng.random() < 0.5 and reps > 1), "rep_time": uniform(rng, 0.45, 0.75)}, 0.6)


def _render_punch(p, fps):
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    guard_arms(b)
    active = (b.t - 0.3) / (p["duration"] - 0.6)
    idx, u = rep_phase(active, reps)
    inside = (active >= 0) & (active < 1)
    e = inside * pulse(u, 0.05, 0.4, 0.52, 0.92)
    lead = str(p["side"])
    for side in ("left", "right"):
        s = side_sign(side)
        if p.get("alternate"):
            mine = (idx % 2 == 0) if side == lead else (idx % 2 == 1)
        else:
            mine = np.full(idx.shape, side == lead)
        w = e * mine
        if p["style"] == "hook":
            b.rot(f"{side}_shoulder", x=-20 * w, y=-s * 45 * w, z=s * 65 * w)
            b.rot(f"{side}_elbow", x=25 * w)
            b.spine(y=-s * 25 * w)
        else:
            b.rot(f"{side}_shoulder", x=-50 * w, y=-s * 4 * w)
            b.rot(f"{side}_elbow", x=110 * w)
            b.spine(y=-s * 18 * w)
    b.pair("knee", x=10)
    return b.build(ramp=0.25)


# --------------------------------------------------------------------------------------------------------------------
# the vocabulary
# --------------------------------------------------------------------------------------------------------------------


def _sample_side_kick(rng):
    return _sample_kick(rng)


def _sample_front_kick(rng):
    return {**_sample_kick(rng), "height": uniform(rng, 50, 100), "lean": uniform(rng, 5, 20)}


def _sample_back_kick(rng):
    return {**_sample_kick(rng), "height": uniform(rng, 40, 75), "lean": uniform(rng, 20, 40)}


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        Primitive("stand_idle", "stands still, shifting weight a little", "idle", False, _sample_idle, _render_idle),
        Primitive("walk", "walks forward, backward or sideways, possibly turning in a circle", "locomotion", True,
                  _sample_walk, _render_walk),
        Primitive("run", "runs forward with long strides and a flight phase", "locomotion", False, _sample_run,
                  _render_run),
        Primitive("turn_around", "turns on the spot by 90 to 360 degrees with small steps", "locomotion", False,
                  _sample_turn, _render_turn),
        Primitive("jog_in_place", "jogs on the spot: alternating knee lifts, arms swinging", "cardio", False,
                  _sample_jog_in_place, _render_in_place),
        Primitive("high_knees", "runs in place lifting the knees to hip height", "cardio", False, _sample_high_knees,
                  _render_in_place),
        Primitive("butt_kicks", "runs in place kicking the heels up to the buttocks", "cardio", False,
                  _sample_butt_kicks, _render_in_place),
        Primitive("jump", "jumps up in place or forward, arms swinging", "cardio", False, _sample_jump, _render_jump),
        Primitive("side_kick", "kicks one leg out to the side, torso leaning away", "martial", True, _sample_side_kick,
                  _render_side_kick),
        Primitive("front_kick", "kicks one leg forward", "martial", True, _sample_front_kick, _render_front_kick),
        Primitive("back_kick", "kicks one leg backward, leaning forward", "martial", True, _sample_back_kick,
                  _render_back_kick),
        Primitive("punch", "punches (jabs or hooks) from a guard, one hand or alternating", "martial", True,
                  _sample_punch, _render_punch),
        Primitive("wave", "waves one hand (or both) overhead or at shoulder height", "gesture", True, g.sample_wave,
                  g.render_wave),
        Primitive("clap", "claps the hands in front of the chest or overhead", "gesture", False, g.sample_clap,
                  g.render_clap),
        Primitive("bow", "bows forward from the hips and comes back up", "gesture", False, g.sample_bow, g.render_bow),
        Primitive("stretch_up", "raises both arms overhead and stretches upward", "stretch", False, g.sample_stretch_up,
                  g.render_stretch_up),
        Primitive("side_bend", "bends the torso sideways with one arm over the head", "stretch", True,
                  g.sample_side_bend, g.render_side_bend),
        Primitive("torso_twist", "twists the upper body left and right", "stretch", False, g.sample_twist,
                  g.render_twist),
        Primitive("squat", "squats down and stands back up", "cardio", False, g.sample_squat, g.render_squat),
        Primitive("arm_circles", "circles the outstretched arms forward or backward", "upper_body", True,
                  g.sample_arm_circles, g.render_arm_circles),
        Primitive("toe_touch", "bends down to touch the opposite foot, alternating hands", "stretch", True,
                  g.sample_toe_touch, g.render_toe_touch),
    )
}


def get_primitive(name: str) -> Primitive:
    if name not in PRIMITIVES:
        raise ValueError(f"unknown primitive {name!r}; the vocabulary is {sorted(PRIMITIVES)}")
    return PRIMITIVES[name]


def render(name: str, params: Params, fps: float) -> Track:
    """Render one primitive instance to a track at `fps`."""
    return get_primitive(name).render(params, fps)


def sample(name: str, rng: np.random.Generator) -> Params:
    """Sample one instance's parameters in the prior corpus's style."""
    return get_primitive(name).sample(rng)


def resolved_duration(name: str, params: Params, fps: float) -> float:
    """The instance's duration in seconds, as its renderer will produce it."""
    return (len(render(name, params, fps)) - 1) / fps


__all__ = ["PRIMITIVES", "Primitive", "Params", "get_primitive", "guard_arms", "render", "sample", "resolved_duration"]
