"""Small building blocks for writing joint-angle curves: envelopes, keyframes, and a degree-based pose builder.

Primitives are written in degrees against the sign conventions of `kinemic.synthetic.body` and for the body's left
side; `TrackBuilder.build` turns them into a radian `Track`, mirrored when the instance is right-sided.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kinemic.skeleton import SMPL24_JOINT_NAMES
from kinemic.synthetic.body import Track, mirror_track

Params = dict[str, float | int | str]  # a primitive instance's parameters, storable as JSON
TWO_PI = 2.0 * np.pi

JOINT = {name: i for i, name in enumerate(SMPL24_JOINT_NAMES)}
SPINE = ("spine1", "spine2", "spine3")
SIDES = ("left", "right")


def num_frames(duration: float, fps: float) -> int:
    """Frames covering `duration` seconds, both ends included (at least 2)."""
    return max(int(round(duration * fps)) + 1, 2)


def smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def envelope(t: np.ndarray, duration: float, ramp_in: float, ramp_out: float | None = None) -> np.ndarray:
    """0 -> 1 -> 0 over [0, duration] with smooth ramps (seconds); the weight that blends a segment into a motion."""
    ramp_out = ramp_in if ramp_out is None else ramp_out
    rise = smoothstep(t / max(ramp_in, 1e-6))
    fall = smoothstep((duration - t) / max(ramp_out, 1e-6))
    return np.minimum(rise, fall)


def keyframes(u: np.ndarray, knots: Sequence[tuple[float, float]]) -> np.ndarray:
    """Smooth (ease-in/out) interpolation through (time, value) knots at normalised times u; flat outside."""
    times = np.array([k[0] for k in knots], dtype=np.float64)
    values = np.array([k[1] for k in knots], dtype=np.float64)
    if np.any(np.diff(times) <= 0):
        raise ValueError(f"keyframe times must increase strictly, got {times.tolist()}")
    idx = np.clip(np.searchsorted(times, u, side="right") - 1, 0, len(times) - 2)
    span = times[idx + 1] - times[idx]
    frac = smoothstep((u - times[idx]) / span)
    return values[idx] + frac * (values[idx + 1] - values[idx])


def pulse(u: np.ndarray, start: float, peak_from: float, peak_to: float, end: float) -> np.ndarray:
    """0 before `start`, rising to 1 at `peak_from`, held to `peak_to`, back to 0 at `end` (normalised times)."""
    return keyframes(u, [(start, 0.0), (peak_from, 1.0), (peak_to, 1.0), (end, 0.0)]) * (u >= start) * (u <= end)


def half_wave(phase: np.ndarray, power: float = 1.0) -> np.ndarray:
    """max(0, sin(phase)) ** power: the lifting half of a cycle."""
    return np.maximum(np.sin(phase), 0.0) ** power


class TrackBuilder:
    """Accumulates degree-valued joint angles and root channels for one primitive instance of T frames."""

    def __init__(self, duration: float, fps: float):
        self.fps = float(fps)
        self.duration = float(duration)
        self.n = num_frames(duration, fps)
        self.t = np.arange(self.n) / self.fps
        self.u = self.t / max(self.duration, 1e-6)
        self.track = Track.zeros(self.n)

    def rot(self, joint: str, x=0.0, y=0.0, z=0.0) -> TrackBuilder:
        """Add Euler angles in degrees (scalars or (T,) arrays) to one joint."""
        j = JOINT[joint]
        for axis, value in enumerate((x, y, z)):
            if np.ndim(value) or value:
                self.track.angles[:, j, axis] += np.radians(value)
        return self

    def pair(self, joint: str, x=0.0, y=0.0, z=0.0) -> TrackBuilder:
        """The same movement on both sides, mirrored: y and z flip sign on the right."""
        self.rot(f"left_{joint}", x, y, z)
        self.rot(f"right_{joint}", x, -np.asarray(y) if np.ndim(y) else -y, -np.asarray(z) if np.ndim(z) else -z)
        return self

    def spine(self, x=0.0, y=0.0, z=0.0) -> TrackBuilder:
        """Spread a trunk rotation over the three spine joints."""
        for name, share in zip(SPINE, (0.4, 0.35, 0.25), strict=True):
            self.rot(name, np.asarray(x) * share, np.asarray(y) * share, np.asarray(z) * share)
        return self

    def build(self, side: str = "left", ramp: float = 0.25, ramp_out: float | None = None) -> Track:
        """The finished track, weighted by a smooth envelope and mirrored for right-sided instances."""
        if side not in SIDES:
            raise ValueError(f"side={side!r}: expected one of {SIDES}")
        env = envelope(self.t, self.duration, ramp, ramp_out)
        out = Track.zeros(self.n)
        out.add(self.track, 0, env)
        return mirror_track(out) if side == "right" else out


def side_sign(side: str) -> float:
    """+1 for the body's left, -1 for its right: the sign of y and z angles of a sided movement."""
    if side not in SIDES:
        raise ValueError(f"side={side!r}: expected one of {SIDES}")
    return 1.0 if side == "left" else -1.0


def other_side(side: str) -> str:
    return "right" if side == "left" else "left"


# --- sampling helpers shared by the primitives and the target styles ---


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float drawn uniformly from [lo, hi)."""
    return float(rng.uniform(lo, hi))


def random_side(rng: np.random.Generator, p_left: float = 0.5) -> str:
    """'left' with probability p_left, else 'right'."""
    return "left" if rng.random() < p_left else "right"


def timed(params: Params, margin: float) -> Params:
    """Set `duration` = repetitions x repetition time + a margin for getting into and out of the movement."""
    return {**params, "duration": int(params["reps"]) * float(params["rep_time"]) + margin}


def rep_phase(u_total: np.ndarray, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Split normalised time into `reps` equal repetitions: (repetition index, local time in [0, 1])."""
    x = np.clip(u_total, 0.0, 1.0 - 1e-9) * reps
    return np.floor(x), x - np.floor(x)
