"""Templated captions for the prior corpus: paraphrases, synonyms, ordering, abstractions, and HumanML3D tokens.

HumanML3D captions are free text written by many annotators: the same kick is "kicks out to the side with the left
leg", "does a karate kick" or just "practices martial arts". The mining stage has to find target classes through that
variety, so templates here avoid the target class names ("run on the spot", "side kick", "stretch oneself") most of
the time and describe whole sequences in order ("walks forward, then kicks sideways with the left leg") or abstractly
("warms up before exercise").

Tokens follow HumanML3D's `word/POS` field (spaCy in the original: lower case, punctuation dropped, nouns and verbs
lemmatised except 'left'), here from a small built-in lexicon of the template words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from kinemic.synthetic.primitives import Params

SUBJECTS = ("a person", "a person", "a person", "someone", "a man", "a woman", "the person", "a human", "a figure",
            "the man", "the woman", "a guy")

# Abstract descriptions of whole activities, by primitive category (the paper's "practices martial arts").
ABSTRACTIONS = {
    "martial": ("practices martial arts", "does some kickboxing moves", "is fighting an imaginary opponent",
                "performs karate moves", "trains some fighting moves", "practices self defense"),
    "cardio": ("warms up before exercise", "does some fitness moves", "is exercising", "works out",
               "does a warm up routine", "does calisthenics", "does some cardio exercises"),
    "stretch": ("warms up before exercise", "does some stretching exercises", "loosens up the body",
                "does a warm up routine", "limbers up", "does some light exercise"),
    "upper_body": ("does some arm exercises", "warms up the shoulders", "does some fitness moves", "is exercising"),
    "gesture": ("greets someone", "is trying to get someone's attention", "is celebrating",
                "communicates with gestures"),
    "locomotion": ("moves around", "walks around the room", "paces around", "moves about the space"),
}


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _times(n: int) -> str:
    return {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}.get(n, "several times")


def _speed(cadence: float, slow: float, fast: float, rng) -> str:
    if cadence < slow:
        return " " + pick(rng, ("slowly", "at a slow pace", "leisurely"))
    if cadence > fast:
        return " " + pick(rng, ("quickly", "briskly", "fast"))
    return ""


def phrase(name: str, p: Params, rng: np.random.Generator) -> str:
    """One verb phrase (third person, present tense) describing a primitive instance."""
    side = str(p.get("side", "left"))
    other = "right" if side == "left" else "left"
    reps = int(p.get("reps", 1))
    if name == "stand_idle":
        return pick(rng, ("stands still", "stands in place", "waits for a moment", "stands idle", "pauses",
                           "remains standing", "stands there"))
    if name == "walk":
        turn = float(p.get("turn", 0.0))
        direction = p["direction"]
        if direction == "sideways":
            return pick(rng, (f"walks sideways to the {side}", f"sidesteps to the {side}", f"shuffles to the {side}",
                               f"steps sideways to the {side}", f"moves to the {side} with side steps"))
        if direction == "backward":
            return pick(rng, ("walks backward", "steps backwards", "walks backwards", "backs up",
                               "takes a few steps back")) + _speed(p["cadence"], 1.7, 2.05, rng)
        if turn:
            turn_dir = "left" if turn > 0 else "right"
            circle = "counterclockwise" if turn > 0 else "clockwise"
            return pick(rng, (f"walks in a {circle} circle", f"walks forward while turning {turn_dir}",
                               f"walks in a curve to the {turn_dir}", f"walks around in a {circle} direction"))
        return pick(rng, ("walks forward", "walks straight ahead", f"takes {int(p['steps'])} steps forward",
                           "moves forward", "strolls forward", "walks ahead")) + _speed(p["cadence"], 1.7, 2.05, rng)
    if name == "run":
        if p.get("turn"):
            return pick(rng, ("runs in a circle", "jogs around in a curve", "runs while turning"))
        return pick(rng, ("runs forward", "jogs forward", "runs", "sprints ahead", "runs straight ahead",
                           "jogs a few steps forward"))
    if name == "turn_around":
        angle = float(p["angle"])
        turn_dir = "left" if p["direction"] == "counterclockwise" else "right"
        if angle >= 360:
            return pick(rng, ("spins around", "turns a full circle", f"spins around {p['direction']}",
                               "does a full turn"))
        if angle <= 90:
            return pick(rng, (f"turns to the {turn_dir}", f"turns {turn_dir}", f"turns ninety degrees {turn_dir}"))
        return pick(rng, ("turns around", "turns back", "turns around to face the other way",
                           f"turns around to the {turn_dir}"))
    if name == "jog_in_place":
        return pick(rng, ("jogs in place", "jogs in place", "jogs on the spot", "runs in place",
                           "jogs lightly in place", "jogs without moving forward", "does a light jog in place",
                           "jogs in one spot", "runs on the spot"))
    if name == "high_knees":
        return pick(rng, ("does high knees", "runs in place lifting the knees high",
                           "jogs in place bringing the knees up high", "marches quickly raising the knees to the chest",
                           "does high knee runs"))
    if name == "butt_kicks":
        return pick(rng, ("does butt kicks", "jogs in place kicking the heels back",
                           "runs in place bringing the heels to the buttocks", "kicks the heels up behind"))
    if name == "jump":
        if p.get("mode") == "forward":
            return pick(rng, ("jumps forward", "leaps forward", "hops forward", "does a long jump forward"))
        if reps > 1:
            return pick(rng, (f"jumps {_times(reps)}", "jumps up and down", "hops up and down", "jumps in place"))
        return pick(rng, ("jumps up", "jumps in place", "leaps straight up", "does a vertical jump"))
    if name == "side_kick":
        many = f" {_times(reps)}" if reps > 1 and rng.random() < 0.5 else ""
        return pick(rng, (f"kicks sideways with the {side} leg", f"kicks out to the {side} side",
                           f"raises the {side} leg sideways in a kick", f"kicks the {side} leg out to the side",
                           f"performs a sideways kick with the {side} foot", f"kicks to the {side}",
                           f"does a side kick with the {side} leg")) + many
    if name == "front_kick":
        return pick(rng, (f"kicks forward with the {side} leg", f"does a front kick with the {side} foot",
                           f"kicks the {side} leg straight ahead", "kicks forward", "kicks in front of them"))
    if name == "back_kick":
        return pick(rng, (f"kicks backward with the {side} leg", f"kicks the {side} leg back", "does a back kick",
                           f"kicks behind with the {side} foot"))
    if name == "punch":
        if p.get("alternate"):
            return pick(rng, ("punches with both hands alternately", "throws a series of punches", "boxes the air",
                               "throws punches with both fists", "throws a combination of punches"))
        if p["style"] == "hook":
            return pick(rng, (f"throws a {side} hook", f"swings a hook punch with the {side} arm",
                               f"does a hook with the {side} hand"))
        if reps > 1:
            return pick(rng, (f"punches {_times(reps)} with the {side} hand", f"jabs repeatedly with the {side} fist",
                               f"throws {reps} jabs"))
        return pick(rng, (f"punches forward with the {side} hand", f"throws a jab with the {side} fist",
                           "punches straight ahead", f"punches with the {side} arm"))
    if name == "wave":
        if p.get("both"):
            return pick(rng, ("waves both hands", "waves both arms over the head", "waves with both hands"))
        if p["level"] == "overhead":
            return pick(rng, (f"waves the {side} arm above the head", f"raises the {side} hand high and waves",
                               f"waves with the {side} hand over the head"))
        return pick(rng, (f"waves the {side} hand", f"waves with the {side} hand", "waves hello",
                           f"raises the {side} hand and waves", "waves"))
    if name == "clap":
        if p["height"] == "overhead":
            return pick(rng, ("claps above the head", "claps the hands over the head"))
        return pick(rng, ("claps the hands", "claps", f"claps {_times(reps)}", "applauds", "claps the hands together"))
    if name == "bow":
        return pick(rng, ("bows", "bows forward", "takes a bow", "bends forward in a bow", "bows politely"))
    if name == "stretch_up":
        if p.get("toes"):
            return pick(rng, ("rises on the toes and reaches up", "stands on tiptoes and stretches the arms up"))
        return pick(rng, ("stretches the arms above the head", "raises both arms up and stretches",
                           "reaches up high with both hands", "lifts the arms overhead", "stretches upward",
                           "raises both hands over the head"))
    if name == "side_bend":
        if p.get("alternate") and reps > 1:
            return pick(rng, ("bends from side to side", "leans left and right", "stretches to both sides"))
        return pick(rng, (f"bends to the {side}", f"leans to the {side} with the {other} arm over the head",
                           f"stretches sideways to the {side}", f"does a side bend to the {side}"))
    if name == "torso_twist":
        return pick(rng, ("twists the torso from side to side", "rotates the upper body left and right",
                           "twists at the waist", "turns the upper body back and forth"))
    if name == "squat":
        return pick(rng, (f"does {reps} squats" if reps > 1 else "does a squat", "squats down",
                           "squats and stands back up", "bends the knees into a squat"))
    if name == "arm_circles":
        if p.get("arms") == "one":
            return pick(rng, (f"circles the {side} arm", f"rotates the {side} arm in circles"))
        return pick(rng, ("makes circles with the arms", "rotates the arms in circles",
                           f"circles the arms {p['direction']}", "does arm circles",
                           "swings the arms around in circles"))
    if name == "toe_touch":
        return pick(rng, ("touches the toes", "bends down and touches the opposite foot",
                           "reaches down to touch the toes with alternating hands",
                           f"touches the {other} foot with the {side} hand", "bends over to touch the feet"))
    raise ValueError(f"no caption templates for primitive {name!r}")


def sequence_caption(subject: str, phrases: Sequence[str], rng: np.random.Generator) -> str:
    """Join verb phrases in temporal order with varied connectives."""
    if not phrases:
        raise ValueError("sequence_caption needs at least one phrase")
    if len(phrases) == 1:
        text = f"{subject} {phrases[0]}"
    elif len(phrases) == 2:
        a, b = phrases
        text = pick(rng, (f"{subject} {a}, then {b}", f"{subject} {a} and then {b}", f"{subject} first {a}, then {b}",
                           f"{subject} {a} and {b}", f"{subject} {a}, after that {b}", f"{subject} {a} before he {b}"
                           if subject in ("a man", "the man", "a guy") else f"{subject} {a}, and afterwards {b}"))
    else:
        head, last = ", ".join(phrases[:-1]), phrases[-1]
        text = pick(rng, (f"{subject} {head}, and then {last}", f"{subject} {head}, then {last}",
                           f"{subject} first {head}, and finally {last}"))
    return _finish(text, rng)


def abstract_caption(subject: str, category: str, rng: np.random.Generator) -> str | None:
    options = ABSTRACTIONS.get(category)
    return _finish(f"{subject} {pick(rng, options)}", rng) if options else None


def _finish(text: str, rng: np.random.Generator) -> str:
    """Vary capitalisation and the final full stop like human annotators."""
    if rng.random() < 0.6:
        text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.7 else text


# --------------------------------------------------------------------------------------------------------------------
# mirroring and tokens
# --------------------------------------------------------------------------------------------------------------------

_MIRROR_WORDS = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}
_MIRROR_RE = re.compile(r"\b(left|right|clockwise|counterclockwise)\b", re.IGNORECASE)


def mirror_text(text: str) -> str:
    """Swap left/right and clockwise/counterclockwise, keeping capitalisation (HumanML3D's mirrored captions)."""

    def swap(m: re.Match) -> str:
        word = m.group(0)
        new = _MIRROR_WORDS[word.lower()]
        return new.capitalize() if word[0].isupper() else new

    return _MIRROR_RE.sub(swap, text)


def _lexicon() -> dict[str, tuple[str, str]]:
    lex: dict[str, tuple[str, str]] = {}
    for pos, words in {
        "DET": "a an the this that each both some several one",
        "PRON": "someone they them he she it their his her themselves",
        "ADP": "in on to with at for over above behind before after into out of from by around about without up down "
               "like across toward towards",
        "CCONJ": "and or but",
        "ADV": "then first finally afterwards forward forwards backward backwards sideways straight ahead back up down "
               "slowly quickly briskly fast lightly repeatedly alternately politely high once twice again there "
               "around leisurely together",
        "ADJ": "left right other opposite slow light full long vertical high imaginary clockwise counterclockwise "
               "few short ninety hello idle",
        "NUM": "two three four five six seven eight nine ten",
        "AUX": "is are does",
        "PART": "not",
    }.items():
        for w in words.split():
            lex.setdefault(w, (w, pos))
    verbs = ("walk stand wait pause remain step take move jab stroll run jog sprint turn spin do kick raise perform "
             "punch throw box swing wave clap applaud bow bend stretch reach lift rise lean twist rotate squat circle "
             "touch jump hop leap march bring practice fight train loosen limber greet try get celebrate communicate "
             "shuffle sidestep warm work make kick face pace")
    for v in verbs.split():
        lex[v] = (v, "VERB")
        forms = {v + "s", v + "es", v + "ed", v + "ing", (v[:-1] + "ies") if v.endswith("y") else v + "s"}
        if v.endswith("e"):
            forms |= {v + "s", v[:-1] + "ing", v + "d"}
        if v in ("run", "jog", "hop", "step", "box"):
            forms |= {v + v[-1] + "ing", v + v[-1] + "ed", v + "es"}
        for f in forms:
            lex.setdefault(f, (v, "VERB"))
    for irregular, lemma in (("does", "do"), ("takes", "take"), ("throws", "throw"), ("rises", "rise"),
                             ("leans", "lean"), ("brings", "bring"), ("tries", "try"), ("lifts", "lift")):
        lex[irregular] = (lemma, "VERB")
    nouns = ("person man woman human figure guy leg arm hand foot head knee body torso waist side place spot circle "
             "step kick jab hook punch fist heel buttock toe chest shoulder hip air room space direction curve degree "
             "opponent combination series routine exercise move motion fitness warm martial art karate kickboxing "
             "cardio calisthenics stretching defense self attention gesture bow squat tiptoe jump front time moment")
    plurals = {"foot": "feet", "knee": "knees", "man": "men", "woman": "women"}
    for n in nouns.split():
        lex.setdefault(n, (n, "NOUN"))
        lex.setdefault(plurals.get(n, n + "s"), (n, "NOUN"))
    for w in ("left", "right"):  # HumanML3D keeps 'left' unlemmatised; both are adjectives here
        lex[w] = (w, "ADJ")
    lex["arts"] = ("art", "NOUN")
    return lex


LEXICON = _lexicon()


def tokens(text: str) -> tuple[str, ...]:
    """HumanML3D `word/POS` tokens: lower case, hyphens removed, non-alphabetic words dropped."""
    out = []
    for raw in text.replace("-", "").replace("'s", "").split():
        word = re.sub(r"[^a-z]", "", raw.lower())
        if not word:
            continue
        lemma, pos = LEXICON.get(word, (word, _default_pos(word)))
        out.append(f"{lemma}/{pos}")
    return tuple(out)


def _default_pos(word: str) -> str:
    if word.endswith("ly"):
        return "ADV"
    if word.endswith("ing") or word.endswith("ed"):
        return "VERB"
    return "NOUN"
