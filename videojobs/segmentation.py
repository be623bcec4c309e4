"""Knowledge points found automatically: topic segmentation of a transcript (pure).

:func:`propose` turns a parsed :class:`~videojobs.models.Transcript` into knowledge points, one
per topic, for ``segmentation.auto``. It is deterministic, offline and CPU-only: no model and no
data are fetched or shipped; everything is computed from the transcript's own words.

How it works (lexical cohesion, after Hearst's TextTiling, with the changes below):

1. **Units.** The transcript's cues, or its sentences when every cue has word times (a sentence
   ends at a word ending in ``.``, ``?`` or ``!``). Boundaries only ever fall between units.
2. **Terms.** Lower-cased words of three letters or more, stop words removed (a small English
   list, plus any word found in more than half of the document's one-minute stretches, which
   works in any language that separates words with spaces), English plurals and ``-ing``/``-ed``
   endings folded when the language is English or unknown. Each term is weighted by its inverse
   document frequency over the one-minute stretches, so words that are everywhere count little.
3. **Candidates.** At every gap between units, the cosine similarity of the text in the ``W``
   seconds before and after it, averaged over window sizes of 60, 120 and 240 seconds (not
   longer than ``minDuration``), and TextTiling's *depth* (how far the similarity dips below the
   highest points on either side). The gaps where the depth peaks are the candidate boundaries,
   plus a gap every ``min(minDuration / 2, 30 s)`` so that any clip length can be met.
4. **Choice.** Dynamic programming over the candidates finds the segmentation with the
   shortest total code length (Utiyama and Isahara's model, 2001): each topic's words are
   coded with that topic's own word distribution (add-one smoothing), and each boundary costs
   ``2 log(words in the document)``, so a boundary is made only where the vocabulary changes
   enough to pay for it. Every clip lasts between ``minDuration`` and ``maxDuration``; with a
   ``targetCount`` there are exactly that many clips (when the bounds allow it).
5. **Hints.** A candidate within 20 seconds of a chapter start of the source (when given)
   costs nothing, so an author's chapter is taken unless the bounds forbid it.
6. **Titles and descriptions.** For each topic, its key phrases: runs of one to three content
   words inside one unit, scored by how often they occur in the topic and how rare they are in
   the other topics (TF-IDF over the topics). The title is the best phrase, with the second
   when the best is one word (more phrases are added while a title repeats an earlier one, so
   titles are unique); the description lists the
   key phrases and quotes the unit closest to the topic's centre. Every word of a title and a
   description occurs in its own topic.
7. **Confidence.** A boundary's strength is ``1 - cost / saving``: how much shorter the two
   topics on either side are coded apart than together, against the cost of a boundary (0: it
   barely pays for itself; near 1: a clear change; a chapter-backed boundary counts as 1). A
   point's confidence is the weaker of its two edges (the document's own start and end count
   as 1).

The work is linear in the transcript's length times ``maxDuration``: a two-hour transcript
(about 17,000 words) is segmented in about half a second (``benchmarks/bench_segmentation.py``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from videojobs.models import KnowledgePoint, Transcript

DEFAULT_MIN_DURATION = 60.0
"""Shortest proposed clip, seconds, when the spec does not say."""
DEFAULT_MAX_DURATION = 1800.0
"""Longest proposed clip, seconds, when the spec does not say."""
WINDOWS = (60.0, 120.0, 240.0)
"""Window sizes (seconds) compared on either side of a gap (for the candidates)."""
CHAPTER_SNAP = 20.0
"""A gap this close to a chapter start is backed by the chapter."""
GRID = 30.0
MAX_CANDIDATES = 499
"""Most candidate boundaries: bounds the work on long transcripts, and keeps a proposal within
the planner's 500 knowledge points."""
WORK = 5_000_000
"""Word reads the cost table may take (candidates x words within maxDuration of each)."""
"""A candidate gap at least this often (seconds), besides the depth peaks."""
EVERYWHERE = 0.5
"""A word found in more than this share of the one-minute stretches is ignored (any language)."""
STRETCH = 60.0
"""Length of the stretches over which document frequencies are counted."""
MAX_TITLE_WORDS = 8
PENALTY = 2.0
"""A boundary must save this many times log(words) nats of code length to be made."""
TITLE_MAX = 200
DESCRIPTION_MAX = 600

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END_RE = re.compile(r"[.?!…][\"'”’)\]]*$")

STOPWORDS_EN = frozenset(
    """
    a about above actually after again against all almost also although always am among an and
    another any anybody anyone anything anyway are aren't around as at back be became because
    become been before being below between both but by can can't cannot could couldn't did didn't
    do does doesn't doing don't done down during each either else enough even ever every
    everybody everyone everything few first for from further get gets getting go goes going gone
    got gotta gonna had hadn't has hasn't have haven't having he he'd he'll he's her here here's
    hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it it's
    its itself just kind know let let's like likely look lot lots made make makes many may maybe me
    might mine more most much must mustn't my myself need needs never new next no nobody none nor
    not nothing now of off often oh okay ok on once one only onto or other others otherwise ought
    our ours ourselves out over own part put quite rather really right said same say says see
    seem seems shall shan't she she'd she'll she's should shouldn't since so some somebody someone
    something sometimes somewhat still such sure take than that that's the their theirs them
    themselves then there there's therefore these they they'd they'll they're they've thing things
    think this those though through thus to today together too took toward towards two under
    until up upon us use used uses using very via want wants was wasn't way ways we we'd we'll
    we're we've well went were weren't what what's whatever when when's where where's whether
    which while who who's whom whose why why's will with within without won't would wouldn't yeah
    yes yet you you'd you'll you're you've your yours yourself yourselves um uh mm hmm
    """.split()
)
"""English function words and filler; other languages rely on the frequency rule."""


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposedPoint:
    """One proposed topic."""

    start: float
    end: float
    title: str
    description: str
    confidence: float
    """The weaker of its two edges' strengths."""
    phrases: tuple[str, ...]
    start_strength: float = 1.0
    """Strength of the boundary it starts at (1 for the first point)."""


@dataclass
class Proposal:
    """The proposed topics, in time order, and what was done to find them."""

    points: list[ProposedPoint]
    notes: list[str] = field(default_factory=list)

    def knowledge_points(self, prefix: str = "topic") -> list[KnowledgePoint]:
        """The proposal as knowledge points (ids ``topic-01``...; the last one has no end)."""
        out = []
        for k, p in enumerate(self.points, start=1):
            last = k == len(self.points)
            fields: dict[str, object] = {
                "id": f"{prefix}-{k:02d}",
                "title": p.title,
                "description": p.description,
                "start": str(p.start),  # a TimeValue takes fractions as strings
            }
            if not last:
                fields["end"] = str(p.end)
            out.append(KnowledgePoint.model_validate(fields))
        return out


@dataclass(frozen=True)
class Settings:
    """The bounds of a proposal (``segmentation.auto``)."""

    min_duration: float = DEFAULT_MIN_DURATION
    max_duration: float = DEFAULT_MAX_DURATION
    target_count: int | None = None
    language: str | None = None


# --- units and terms ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A stretch of text between two possible boundaries."""

    start: float
    end: float
    text: str


def units_of(transcript: Transcript) -> list[Unit]:
    """Sentences when every cue has word times, else cues; empty ones dropped; in time order."""
    cues = [c for c in transcript.cues if c.text.strip()]
    if cues and all(c.words for c in cues):
        units: list[Unit] = []
        current: list[tuple[float, float, str]] = []
        for cue in cues:
            assert cue.words is not None
            for w in cue.words:
                current.append((w.start, w.end, w.text))
                if _SENTENCE_END_RE.search(w.text.strip()):
                    units.append(_unit(current))
                    current = []
        if current:
            units.append(_unit(current))
        return sorted(units, key=lambda u: u.start)
    return [Unit(c.start, c.end, " ".join(c.text.split())) for c in cues]


def _unit(words: list[tuple[float, float, str]]) -> Unit:
    return Unit(words[0][0], max(w[1] for w in words), " ".join(w[2].strip() for w in words))


def _english(language: str | None) -> bool:
    return language is None or language.lower().split("-")[0] in ("en", "eng", "english")


def _fold(word: str) -> str:
    """A crude English stem: plurals, -ing, -ed and a final e folded (variables, variable ->
    variabl; parsing, parsed, parse -> pars)."""
    w = word
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith("sses") or (len(w) > 4 and w.endswith(("xes", "zes", "ches", "shes"))):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    elif len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


class _Vocabulary:
    """Words -> terms for one document (stop words, folding, document frequency)."""

    def __init__(self, units: Sequence[Unit], language: str | None) -> None:
        self.english = _english(language)
        self.stop = STOPWORDS_EN if self.english else frozenset()
        self.raw = [self._terms(u.text) for u in units]
        # stretches of STRETCH seconds: document frequency and the "everywhere" stop rule
        stretches: dict[int, set[str]] = {}
        for u, terms in zip(units, self.raw, strict=True):
            stretches.setdefault(int(u.start // STRETCH), set()).update(terms)
        n = max(1, len(stretches))
        df: Counter[str] = Counter()
        for seen in stretches.values():
            df.update(seen)
        everywhere = {t for t, c in df.items() if n >= 6 and c > n * EVERYWHERE}
        if everywhere:
            self.raw = [[t for t in terms if t not in everywhere] for terms in self.raw]
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items() if t not in everywhere}
        self.vectors = [
            {t: c * self.idf[t] for t, c in Counter(terms).items() if t in self.idf}
            for terms in self.raw
        ]

    def words(self, text: str) -> list[str]:
        return _WORD_RE.findall(text.lower())

    def term(self, word: str) -> str | None:
        if len(word) < 3 or word in self.stop:
            return None
        return _fold(word) if self.english else word

    def _terms(self, text: str) -> list[str]:
        return [t for t in (self.term(w) for w in self.words(text)) if t is not None]


# --- gap scores -----------------------------------------------------------------------------


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    dot = sum(v * b.get(t, 0.0) for t, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def _add(into: dict[str, float], vec: dict[str, float], sign: float) -> None:
    for t, v in vec.items():
        new = into.get(t, 0.0) + sign * v
        if abs(new) < 1e-9:
            into.pop(t, None)
        else:
            into[t] = new


def similarities(
    starts: Sequence[float], vectors: Sequence[dict[str, float]], window: float
) -> list[float]:
    """Cosine similarity, at each gap ``i`` (before unit ``i``, ``1 <= i < n``), of the units
    starting in ``[t - window, t)`` and in ``[t, t + window)``, ``t = starts[i]``; sliding sums."""
    n = len(starts)
    left: dict[str, float] = {}
    right: dict[str, float] = {}
    lo = 0  # left window is units [lo, i)
    hi = 0  # right window is units [i, hi)
    out = [0.0] * n
    for i in range(1, n):
        t = starts[i]
        _add(left, vectors[i - 1], 1.0)
        while starts[lo] < t - window:
            _add(left, vectors[lo], -1.0)
            lo += 1
        if hi < i:
            hi = i
        else:
            _add(right, vectors[i - 1], -1.0)
        while hi < n and starts[hi] < t + window:
            _add(right, vectors[hi], 1.0)
            hi += 1
        out[i] = _cosine(left, right)
    return out


def depth_scores(sim: Sequence[float], smooth: int = 1) -> list[float]:
    """TextTiling depth at each gap of a similarity curve (index 0 is not a gap: 0).

    The curve is first smoothed by a moving average of ``2 * smooth + 1`` gaps."""
    n = len(sim)
    if n < 2:
        return [0.0] * n
    gaps = list(sim[1:])
    sm = []
    for i in range(len(gaps)):
        part = gaps[max(0, i - smooth) : i + smooth + 1]
        sm.append(sum(part) / len(part))
    depth = [0.0] * n
    for i, s in enumerate(sm):
        lp = s
        j = i
        while j > 0 and sm[j - 1] >= lp:
            j -= 1
            lp = sm[j]
        rp = s
        j = i
        while j < len(sm) - 1 and sm[j + 1] >= rp:
            j += 1
            rp = sm[j]
        depth[i + 1] = (lp - s) + (rp - s)
    return depth


# --- choosing boundaries --------------------------------------------------------------------


def _log_costs(
    node_units: Sequence[int],
    times: Sequence[float],
    unit_terms: Sequence[Sequence[int]],
    vocabulary: int,
    lo: float,
    hi: float,
) -> list[list[tuple[int, float]]]:
    """For each node ``i``, ``(j, cost)`` of every later node ``j`` with ``lo <= times[j] -
    times[i] <= hi``: the cost of the units between them as one topic, i.e. their code length
    under their own word distribution with add-one smoothing (Utiyama and Isahara, 2001):
    ``n log(n + V) - sum_w f_w log(f_w + 1)`` for ``n`` words, ``V`` distinct words in the
    document and ``f_w`` occurrences of word ``w``. Built incrementally from each node."""
    m = len(node_units)
    out: list[list[tuple[int, float]]] = [[] for _ in range(m)]
    log = math.log
    for i in range(m - 1):
        counts: dict[int, int] = {}
        acc = 0.0
        n = 0
        u = node_units[i]
        for j in range(i + 1, m):
            span = times[j] - times[i]
            if span > hi + 1e-9:
                break
            while u < node_units[j]:
                for t in unit_terms[u]:
                    a = counts.get(t, 0)
                    acc += (a + 1) * log(a + 2) - (a * log(a + 1) if a else 0.0)
                    counts[t] = a + 1
                n += len(unit_terms[u])
                u += 1
            if span >= lo - 1e-9:
                out[i].append((j, (n * log(n + vocabulary) - acc) if n else 0.0))
    return out


def _snap_to_chapters(
    chosen: list[int],
    nodes: Sequence[int],
    times: Sequence[float],
    hinted: set[int],
    lo: float,
    hi: float,
) -> list[int]:
    """Move each chosen boundary onto a chapter start within :data:`CHAPTER_SNAP` seconds,
    when the clips on either side stay within the bounds."""
    out = list(chosen)
    chapter_nodes = [j for j in range(1, len(nodes) - 1) if nodes[j] in hinted]
    for k, j in enumerate(out):
        if nodes[j] in hinted:
            continue
        prev = times[out[k - 1]] if k else times[0]
        after = times[out[k + 1]] if k + 1 < len(out) else times[-1]
        near = [
            h for h in chapter_nodes
            if abs(times[h] - times[j]) <= CHAPTER_SNAP and h not in out
            and lo <= times[h] - prev <= hi and lo <= after - times[h] <= hi
        ]  # fmt: skip
        if near:
            out[k] = min(near, key=lambda h: (abs(times[h] - times[j]), h))
    return out


def _choose(
    costs: Sequence[Sequence[tuple[int, float]]],
    bonus: Sequence[float],
    target: int | None,
    penalty: float,
) -> list[int] | None:
    """Inner nodes (1..m-2) of the cheapest path from node 0 to node m-1, or None when there is
    none. A path's cost: its segments' costs, plus ``penalty - bonus[j]`` per inner node ``j``;
    with ``target``, paths of exactly ``target`` segments only."""
    m = len(costs)
    inf = math.inf
    layers = target if target is not None else 1
    best = [[inf] * m for _ in range(layers + 1)]
    back = [[-1] * m for _ in range(layers + 1)]
    best[0][0] = 0.0
    for i in range(m):
        for src in range(1 if target is None else layers):
            base = best[src][i]
            if base == inf:
                continue
            dst = src if target is None else src + 1
            for j, c in costs[i]:
                v = base + c + (0.0 if j == m - 1 else penalty - bonus[j])
                if v < best[dst][j]:
                    best[dst][j], back[dst][j] = v, i
    k = 0 if target is None else layers
    if best[k][m - 1] == inf:
        return None
    path = []
    j = back[k][m - 1]
    while j > 0:
        path.append(j)
        if target is not None:
            k -= 1
        j = back[k][j]
    return path[::-1]


# --- titles ---------------------------------------------------------------------------------


def _phrases(text: str, vocab: _Vocabulary) -> list[tuple[tuple[str, ...], str]]:
    """Runs of 1-3 content words (terms, surface form) in ``text``."""
    out = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        for n in (1, 2, 3):
            for k in range(len(run) - n + 1):
                part = run[k : k + n]
                out.append((tuple(t for t, _ in part), " ".join(s for _, s in part)))
        run.clear()

    for m in re.finditer(r"[^\W\d_]+(?:['’][^\W\d_]+)*|[^\w\s]", text):
        token = m.group(0)
        term = vocab.term(token.lower()) if token[0].isalpha() else None
        if term is None or term not in vocab.idf:
            flush()
        else:
            run.append((term, token))
    flush()
    return out


def _key_phrases(
    segments: Sequence[Sequence[int]], units: Sequence[Unit], vocab: _Vocabulary
) -> list[list[str]]:
    """Up to 8 key phrases (surface form) per segment, best first."""
    seg_terms = [Counter(t for u in seg for t in vocab.raw[u]) for seg in segments]
    n = len(segments)
    df: Counter[str] = Counter()
    for seg_counts in seg_terms:
        df.update(seg_counts.keys())
    out = []
    for seg, terms in zip(segments, seg_terms, strict=True):
        total = sum(terms.values()) or 1
        weight = {
            t: (f / total) * (1 + math.log(n / df[t])) * vocab.idf.get(t, 0.0)
            for t, f in terms.items()
        }

        counts: Counter[tuple[str, ...]] = Counter()
        surface: dict[tuple[str, ...], Counter[str]] = {}
        for u in seg:
            for key, text in _phrases(units[u].text, vocab):
                counts[key] += 1
                surface.setdefault(key, Counter())[text] += 1
        scored = []
        for key, c in counts.items():
            if len(set(key)) < len(key):
                continue
            if len(key) > 1 and c < 2:
                continue
            score = sum(weight.get(t, 0.0) for t in key) / len(key) * (1 + 0.5 * (len(key) - 1))
            score *= 1 + math.log(c)
            form = min(surface[key].items(), key=lambda kv: (-kv[1], kv[0]))[0]
            scored.append((-score, form.lower(), form, key))
        scored.sort()
        chosen: list[str] = []
        seen: list[set[str]] = []
        for _, _, form, key in scored:
            terms_set = set(key)
            if any(terms_set <= s or s <= terms_set for s in seen):
                continue
            chosen.append(form)
            seen.append(terms_set)
            if len(chosen) == 8:
                break
        out.append(chosen)
    return out


def _title(phrases: Sequence[str], fallback: str, used: set[str]) -> str:
    candidates = list(phrases) or [" ".join(_WORD_RE.findall(fallback)[:MAX_TITLE_WORDS])]
    title = ""
    # the best phrase, and the next one when the best is a single word ("Thread, join")
    head = candidates[:2] if len(candidates) > 1 and " " not in candidates[0] else candidates[:1]
    options = [head, *([*head, c] for c in candidates[len(head) :])]
    for parts in options:
        title = ", ".join(parts)
        title = title[:1].upper() + title[1:]
        if title.lower() not in used:
            break
    else:
        words = _WORD_RE.findall(fallback)
        for n in range(1, len(words) + 1):
            extra = f"{title}: {' '.join(words[:n])}"
            if extra.lower() not in used:
                title = extra
                break
    title = title[:TITLE_MAX].strip()
    if not title or title.lower() in used:  # no words at all (music, numbers): numbered
        title = next(f"Topic {k}" for k in range(1, len(used) + 2) if f"topic {k}" not in used)
    used.add(title.lower())
    return title


def _central(seg: Sequence[int], vocab: _Vocabulary) -> int:
    centre: dict[str, float] = {}
    for u in seg:
        _add(centre, vocab.vectors[u], 1.0)
    best, best_score = seg[0], -1.0
    for u in seg:
        if len(vocab.raw[u]) < 4:
            continue
        s = _cosine(vocab.vectors[u], centre)
        if s > best_score:
            best, best_score = u, s
    return best


# --- the proposal ---------------------------------------------------------------------------


def propose(
    transcript: Transcript,
    settings: Settings | None = None,
    chapters: Sequence[float] = (),
    duration: float | None = None,
) -> Proposal:
    """Knowledge points for ``transcript``, one per topic; see the module docstring.

    ``chapters`` are the source's chapter starts (seconds), used as hints; ``duration`` is the
    source length when known (else the transcript's end).
    """
    settings = settings or Settings()
    notes: list[str] = []
    units = units_of(transcript)
    finish = duration if duration is not None else transcript.duration
    begin = 0.0
    if not units:
        return Proposal([], ["segmentation.auto: the transcript has no text"])
    vocab = _Vocabulary(units, settings.language or transcript.language)
    starts = [u.start for u in units]
    n = len(units)
    hinted = _chapter_hints(chapters, starts, begin, finish)
    if hinted:
        notes.append(f"segmentation.auto: {len(hinted)} of the source's chapters used as hints")
    order = _candidates(starts, vocab, settings, begin, finish, hinted)
    nodes = [0, *order, n]  # unit index where each node's segment starts
    times = [begin, *(starts[i] for i in order), finish]
    ids: dict[str, int] = {}
    unit_terms = [[ids.setdefault(t, len(ids)) for t in terms] for terms in vocab.raw]
    total = sum(len(t) for t in unit_terms)
    penalty = PENALTY * math.log(max(total, 2))
    bonus = [penalty if i in hinted else 0.0 for i in nodes]
    bonus[0] = bonus[-1] = 0.0
    costs = _Costs(nodes, times, unit_terms, len(ids))
    chosen, hi = _choose_boundaries(costs, bonus, penalty, settings, notes)
    cut_nodes = _snap_to_chapters(chosen, nodes, times, hinted, settings.min_duration, hi)
    strength = _strengths(costs, cut_nodes, hinted, penalty)
    edges = [0, *(nodes[j] for j in cut_nodes), n]
    return Proposal(_points(units, vocab, edges, strength, begin, finish), notes)


def _chapter_hints(
    chapters: Sequence[float], starts: Sequence[float], begin: float, finish: float
) -> set[int]:
    """The gaps (unit indices) within :data:`CHAPTER_SNAP` seconds of a chapter start."""
    n = len(starts)
    hinted = set()
    for c in chapters:
        if begin < c < finish:
            near = min(range(1, n), key=lambda i: (abs(starts[i] - c), i), default=None)
            if near is not None and abs(starts[near] - c) <= CHAPTER_SNAP:
                hinted.add(near)
    return hinted


def _candidates(
    starts: Sequence[float],
    vocab: _Vocabulary,
    settings: Settings,
    begin: float,
    finish: float,
    hinted: set[int],
) -> list[int]:
    """The candidate gaps, in order: local maxima of depth, plus a gap every so often for
    feasibility, plus the chapter hints; at most MAX_CANDIDATES (the deepest peaks are kept),
    which bounds the work of the choice."""
    n = len(starts)
    windows = [w for w in WINDOWS if w <= max(settings.min_duration, WINDOWS[0])]
    curves = [similarities(starts, vocab.vectors, w) for w in windows]
    sim = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
    depth = depth_scores(sim)
    peaks: list[int] = []
    for i in range(1, n):
        if starts[i] <= begin or starts[i] >= finish:
            continue
        left = depth[i - 1] if i > 1 else -1.0
        right = depth[i + 1] if i + 1 < n else -1.0
        if depth[i] > 0 and depth[i] >= left and depth[i] >= right:
            peaks.append(i)
    span = max(finish - begin, 1.0)
    # each candidate's costs read the words up to maxDuration after it: keep that under WORK
    words = sum(len(t) for t in vocab.raw) + n
    reach = words * min(1.0, settings.max_duration / span)
    limit = int(max(20, min(MAX_CANDIDATES, WORK / max(reach, 1.0))))
    step = max(min(settings.min_duration / 2, GRID), span / (limit / 2))
    if n - 1 <= limit:  # a short transcript: every gap is a candidate
        step = 0.0
    grid: set[int] = set()
    mark = -math.inf
    for i in range(1, n):
        if starts[i] - mark >= step and begin < starts[i] < finish:
            grid.add(i)
            mark = starts[i]
    room = max(0, limit - len(grid) - len(hinted))
    cand = grid | set(sorted(peaks, key=lambda i: (-depth[i], i))[:room])
    return sorted(cand | hinted)


@dataclass(frozen=True)
class _Costs:
    """The candidate nodes and the words between them, for :func:`_log_costs`."""

    nodes: Sequence[int]
    times: Sequence[float]
    unit_terms: Sequence[Sequence[int]]
    vocabulary: int

    def table(self, lo: float, hi: float) -> list[list[tuple[int, float]]]:
        return _log_costs(self.nodes, self.times, self.unit_terms, self.vocabulary, lo, hi)


def _choose_boundaries(
    costs: _Costs, bonus: Sequence[float], penalty: float, settings: Settings, notes: list[str]
) -> tuple[list[int], float]:
    """The chosen boundary nodes and the longest clip allowed: the target count is dropped
    when the bounds cannot meet it, then maxDuration (each with a note)."""
    target = settings.target_count
    chosen: list[int] | None = None
    lo, hi = settings.min_duration, settings.max_duration
    for attempt in range(3):
        chosen = _choose(costs.table(lo, hi), bonus, target, penalty)
        if chosen is not None:
            break
        if attempt == 0 and target is not None:
            notes.append(
                f"segmentation.auto: {target} clips cannot all be between "
                f"{settings.min_duration:g}s and {settings.max_duration:g}s; target count ignored"
            )
            target = None
        else:
            notes.append(
                "segmentation.auto: the transcript cannot be split into clips between "
                f"{settings.min_duration:g}s and {settings.max_duration:g}s; maxDuration ignored"
            )
            hi = math.inf
    return chosen or [], hi


def _strengths(
    costs: _Costs, cut_nodes: Sequence[int], hinted: set[int], penalty: float
) -> dict[int, float]:
    """Each boundary's strength (by unit index): ``1 - penalty / saving`` of coding the
    topics on either side apart; 1 for a chapter-backed boundary."""
    nodes = costs.nodes
    edges_n = [0, *cut_nodes, len(nodes) - 1]
    strength = {}
    for k, j in enumerate(cut_nodes, start=1):
        a, c = edges_n[k - 1], edges_n[k + 1]
        pair = _log_costs([nodes[a], nodes[j], nodes[c]], [0.0, 1.0, 2.0], costs.unit_terms,
                          costs.vocabulary, 0.0, math.inf)  # fmt: skip
        split = dict(pair[0])[1] + dict(pair[1])[2]
        gain = dict(pair[0])[2] - split
        strength[nodes[j]] = (
            1.0 if nodes[j] in hinted else max(0.0, 1.0 - penalty / gain) if gain > 0 else 0.0
        )
    return strength


def _points(
    units: Sequence[Unit],
    vocab: _Vocabulary,
    edges: Sequence[int],
    strength: dict[int, float],
    begin: float,
    finish: float,
) -> list[ProposedPoint]:
    """One point per topic (units ``edges[k]`` to ``edges[k + 1]``): its times, unique title,
    description and confidence (the weaker of its two edges)."""
    segments = [list(range(a, b)) for a, b in zip(edges, edges[1:], strict=False)]
    phrases = _key_phrases(segments, units, vocab)
    used: set[str] = set()
    points = []
    for k, seg in enumerate(segments):
        start = begin if k == 0 else units[edges[k]].start
        end = finish if k == len(segments) - 1 else units[edges[k + 1]].start
        conf = min(strength.get(edges[k], 1.0), strength.get(edges[k + 1], 1.0))
        text = " ".join(units[u].text for u in seg)
        title = _title(phrases[k][:MAX_TITLE_WORDS], text, used)
        central = units[_central(seg, vocab)].text
        description = central
        if phrases[k]:
            description = f"Key phrases: {', '.join(phrases[k][:5])}. {central}"
        if len(description) > DESCRIPTION_MAX:
            description = description[: DESCRIPTION_MAX - 1].rsplit(" ", 1)[0] + "…"
        points.append(
            ProposedPoint(
                start=round(start, 3),
                end=round(end, 3),
                title=title,
                description=description,
                confidence=round(conf, 2),
                phrases=tuple(phrases[k]),
                start_strength=round(strength.get(edges[k], 1.0), 2),
            )
        )
    return points
