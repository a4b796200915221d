"""Upper-body primitives of the vocabulary: gestures (wave, clap, bow) and stretches (arms up, side bend, twist,
squat, arm circles, toe touch). Each has a prior-style sampler and a renderer, registered in `primitives.PRIMITIVES`.
"""

from __future__ import annotations

import numpy as np

from kinemic.synthetic.curves import (
    TWO_PI,
    TrackBuilder,
    other_side,
    pulse,
    random_side,
    rep_phase,
    side_sign,
    timed,
    uniform,
)

# --------------------------------------------------------------------------------------------------------------------


def sample_wave(rng):
    reps = int(rng.integers(2, 7))
    freq = uniform(rng, 1.2, 2.5)
    return {"side": random_side(rng, 0.4), "level": str(rng.choice(["overhead", "shoulder"])), "reps": reps,
            "freq": freq, "both": int(rng.random() < 0.15), "duration": reps / freq + 1.0}


def render_wave(p, fps):
    b = TrackBuilder(p["duration"], fps)
    up = pulse(b.u, 0.0, 0.2, 0.85, 1.0)
    osc = np.sin(TWO_PI * p["freq"] * (b.t - 0.2 * b.duration)) * pulse(b.u, 0.1, 0.25, 0.8, 0.95)
    sides = ("left", "right") if p.get("both") else ("left",)
    for side in sides:
        s = side_sign(side)
        if p["level"] == "overhead":
            b.rot(f"{side}_shoulder", z=s * 150 * up, x=-10 * up)
            b.rot(f"{side}_elbow", z=s * (10 * up + 22 * osc))
        else:
            b.rot(f"{side}_shoulder", z=s * 80 * up, x=-25 * up)
            b.rot(f"{side}_elbow", z=s * (95 * up + 25 * osc))
        b.rot(f"{side}_wrist", z=s * 15 * osc)
    b.rot("head", y=8 * up)
    return b.build(side=str(p["side"]), ramp=0.2)


def sample_stretch_up(rng):
    return {"path": str(rng.choice(["side", "front"])), "toes": float(rng.random() < 0.4),
            "lean_back": uniform(rng, 0, 10), "spread": uniform(rng, 0, 25), "duration": uniform(rng, 2.0, 4.5)}


def render_stretch_up(p, fps):
    b = TrackBuilder(p["duration"], fps)
    k = pulse(b.u, 0.05, 0.4, 0.72, 0.95)
    if p["path"] == "side":
        b.pair("shoulder", z=(172 - p.get("spread", 0.0)) * k)
    else:
        b.pair("shoulder", x=-(165 - p.get("spread", 0.0)) * k, z=5 * k)
    b.pair("elbow", x=-5 * k)
    b.pair("wrist", x=-20 * k)
    b.pair("collar", z=12 * k)
    b.spine(x=-p.get("lean_back", 5.0) * k)
    b.rot("neck", x=-12 * k)
    b.pair("ankle", x=22 * p.get("toes", 0.0) * k)
    return b.build(ramp=0.25)


def sample_side_bend(rng):
    reps = int(rng.integers(1, 4))
    return timed({"side": random_side(rng), "angle": uniform(rng, 18, 35), "reps": reps,
                  "alternate": int(rng.random() < 0.5), "rep_time": uniform(rng, 1.4, 2.4)}, 0.4)


def render_side_bend(p, fps):
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    active = (b.t - 0.2) / (p["duration"] - 0.4)
    idx, u = rep_phase(active, reps)
    k = ((active >= 0) & (active < 1)) * pulse(u, 0.05, 0.4, 0.6, 0.95)
    flip = np.where((idx % 2 == 1) & bool(p.get("alternate")), -1.0, 1.0)  # toward the other side on odd reps
    for side in ("left", "right"):
        s = side_sign(side)
        toward = k * (flip > 0) if side == "left" else k * (flip < 0)
        away = k * (flip < 0) if side == "left" else k * (flip > 0)
        b.rot(f"{side}_shoulder", z=s * (150 * away + 5 * toward))  # the far arm arcs over the head
        b.rot(f"{side}_elbow", z=s * 25 * away)
    b.spine(z=-p["angle"] * k * flip)
    b.rot("pelvis", z=-0.2 * p["angle"] * k * flip)
    b.rot("neck", z=-0.3 * p["angle"] * k * flip)
    return b.build(side=str(p["side"]), ramp=0.25)


def sample_twist(rng):
    reps = int(rng.integers(2, 6))
    return timed({"amplitude": uniform(rng, 25, 50), "reps": reps, "rep_time": uniform(rng, 0.9, 1.6),
                   "arms": str(rng.choice(["chest", "out"]))}, 0.5)


def render_twist(p, fps):
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    k = pulse(b.u, 0.0, 0.12, 0.88, 1.0)
    swing = p["amplitude"] * np.sin(TWO_PI * reps * np.clip((b.t - 0.25) / (p["duration"] - 0.5), 0, 1)) * k
    b.spine(y=swing)
    b.rot("pelvis", y=-0.15 * swing)
    b.rot("head", y=0.3 * swing)
    if p["arms"] == "out":
        b.pair("shoulder", z=85 * k)
    else:
        b.pair("shoulder", x=-70 * k, y=-25 * k, z=20 * k)
        b.pair("elbow", x=-100 * k)
    return b.build(ramp=0.25)


def sample_squat(rng):
    reps = int(rng.integers(1, 5))
    return timed({"depth": uniform(rng, 45, 90), "reps": reps, "rep_time": uniform(rng, 1.4, 2.4),
                   "arms": str(rng.choice(["forward", "hips", "down"]))}, 0.4)


def render_squat(p, fps):
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    active = (b.t - 0.2) / (p["duration"] - 0.4)
    _, u = rep_phase(active, reps)
    k = ((active >= 0) & (active < 1)) * pulse(u, 0.05, 0.45, 0.55, 0.95)
    d, lean = p["depth"], 0.35 * p["depth"]
    b.rot("pelvis", x=lean * k)
    b.pair("hip", x=-(d + lean) * k)
    b.pair("knee", x=1.4 * d * k)
    b.pair("ankle", x=-0.4 * d * k)
    b.spine(x=-0.15 * d * k)
    if p["arms"] == "forward":
        b.pair("shoulder", x=-(85 - lean) * k)
    elif p["arms"] == "hips":
        b.pair("shoulder", z=25 * k).pair("elbow", x=-70 * k, z=20 * k)
    return b.build(ramp=0.2)


def sample_arm_circles(rng):
    reps = int(rng.integers(3, 9))
    return timed({"direction": str(rng.choice(["forward", "backward"])), "size": uniform(rng, 12, 35), "reps": reps,
                   "rep_time": uniform(rng, 0.55, 1.0), "arms": str(rng.choice(["both", "both", "one"])),
                   "side": random_side(rng)}, 1.0)


def render_arm_circles(p, fps):
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    k = pulse(b.u, 0.0, 0.15, 0.85, 1.0)
    ang = TWO_PI * reps * np.clip((b.t - 0.5) / (p["duration"] - 1.0), 0, 1)
    sign = -1.0 if p["direction"] == "forward" else 1.0
    size = p["size"]
    sides = ("left", "right") if p["arms"] == "both" else ("left",)
    for side in sides:
        s = side_sign(side)
        b.rot(f"{side}_shoulder", z=s * (p.get("raise", 85.0) * k + size * np.cos(ang) * k),
              y=s * sign * size * np.sin(ang) * k)
    return b.build(side=str(p.get("side", "left")), ramp=0.25)


def sample_clap(rng):
    reps = int(rng.integers(3, 9))
    freq = uniform(rng, 1.5, 3.0)
    return {"reps": reps, "freq": freq, "height": str(rng.choice(["chest", "chest", "overhead"])),
            "duration": reps / freq + 0.8}


def render_clap(p, fps):
    b = TrackBuilder(p["duration"], fps)
    k = pulse(b.u, 0.0, 0.15, 0.85, 1.0)
    close = 0.5 + 0.5 * np.cos(TWO_PI * p["freq"] * (b.t - 0.4))
    if p["height"] == "overhead":
        b.pair("shoulder", x=-150 * k, y=(-8 * close + 10) * k, z=(10 - 12 * close) * k)
        b.pair("elbow", x=-20 * k)
    else:
        b.pair("shoulder", x=-50 * k, y=(10 - 48 * close) * k, z=(25 - 20 * close) * k)
        b.pair("elbow", x=-(55 + p.get("elbow_extra", 0.0)) * k)
    return b.build(ramp=0.2)


def sample_bow(rng):
    return {"depth": uniform(rng, 25, 70), "duration": uniform(rng, 1.5, 3.0)}


def render_bow(p, fps):
    b = TrackBuilder(p["duration"], fps)
    k = pulse(b.u, 0.05, 0.4, 0.6, 0.95)
    d = p["depth"]
    b.rot("pelvis", x=0.5 * d * k)
    b.pair("hip", x=-0.5 * d * k)
    b.spine(x=0.5 * d * k)
    b.rot("neck", x=10 * k)
    b.pair("shoulder", x=-0.8 * d * k)
    return b.build(ramp=0.2)


def sample_toe_touch(rng):
    reps = int(rng.integers(1, 5))
    return timed({"side": random_side(rng), "reps": reps, "alternate": 1, "depth": uniform(rng, 75, 100),
                   "rep_time": uniform(rng, 1.3, 2.0)}, 0.4)


def render_toe_touch(p, fps):
    """Reach one hand toward the opposite foot (cross toe touch), alternating hands on successive repetitions."""
    reps = int(p["reps"])
    b = TrackBuilder(p["duration"], fps)
    active = (b.t - 0.2) / (p["duration"] - 0.4)
    idx, u = rep_phase(active, reps)
    k = ((active >= 0) & (active < 1)) * pulse(u, 0.05, 0.42, 0.55, 0.95)
    d = p["depth"]
    b.rot("pelvis", x=0.7 * d * k)
    b.pair("hip", x=-(0.7 * d + 15) * k)
    b.pair("knee", x=30 * k)
    b.pair("ankle", x=-15 * k)
    b.spine(x=0.5 * d * k)
    for i, side in enumerate(("left", "right")):
        s = side_sign(side)
        reach = k * ((idx + i) % 2 == 0) if p.get("alternate", 1) else k * (i == 0)
        b.spine(y=-s * 30 * reach)
        b.rot(f"{side}_shoulder", x=-(1.1 * d) * reach, z=-s * 10 * reach)
        b.rot(f"{other_side(side)}_shoulder", z=-s * 60 * reach, x=25 * reach)
    return b.build(side=str(p["side"]), ramp=0.2)
