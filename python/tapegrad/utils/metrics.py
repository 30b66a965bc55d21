"""Entity-level precision / recall / F1 for IOB tag sequences, as the CoNLL ``conlleval`` script scores them.

    scores = entity_scores(gold_sentences, predicted_sentences)   # lists of tag lists
    scores.f1, scores.precision, scores.recall, scores.accuracy
    scores.per_type["PER"].f1
    print(scores.report())        # the same text conlleval.pl prints

Semantics (conlleval's, for ``B-``/``I-``/``O`` tags):

* an entity is a maximal chunk that starts at ``B-X``, or at ``I-X`` when the
  previous token is ``O``, of another type, or there is none (start of the
  sentence), and continues over the following ``I-X`` tokens;
* a predicted entity is correct when an entity with the same type and the same
  first and last token exists in the gold tags;
* precision = correct / predicted entities, recall = correct / gold entities,
  F1 = 2PR / (P + R); each is 0 when its denominator is 0;
* per-type scores cover every type that occurs in either side;
* token accuracy counts tokens whose predicted tag string equals the gold one.

Sentences are scored independently (an entity never crosses a sentence
boundary); passing one flat list of tags scores it as a single sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["get_entities", "entity_scores", "EntityScores", "TypeScores", "token_accuracy", "f1_score"]


def _split(tag):
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    raise ValueError(f"invalid IOB tag {tag!r}: expected 'O', 'B-TYPE' or 'I-TYPE'")


def get_entities(tags):
    """Entities of one tag sequence as ``(type, start, end)`` with ``end`` exclusive, in order."""
    entities = []
    typ = None  # type of the open chunk
    start = 0
    for i, tag in enumerate(tags):
        prefix, t = _split(tag)
        if typ is not None and (prefix != "I" or t != typ):
            entities.append((typ, start, i))
            typ = None
        if prefix == "B" or (prefix == "I" and typ is None):
            typ, start = t, i
    if typ is not None:
        entities.append((typ, start, len(tags)))
    return entities


def _f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


@dataclass
class TypeScores:
    """Counts and scores for one entity type (or overall)."""

    n_gold: int = 0
    n_pred: int = 0
    n_correct: int = 0

    @property
    def precision(self):
        return self.n_correct / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self):
        return self.n_correct / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self):
        return _f1(self.precision, self.recall)


@dataclass
class EntityScores(TypeScores):
    """Overall entity scores (inherited fields), token accuracy and ``per_type`` scores."""

    n_tokens: int = 0
    n_correct_tags: int = 0
    per_type: dict = field(default_factory=dict)

    @property
    def accuracy(self):
        return self.n_correct_tags / self.n_tokens if self.n_tokens else 0.0

    def as_dict(self):
        """Plain dict of the scores (fractions in [0, 1]), for logging."""
        out = {
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "accuracy": self.accuracy, "n_gold": self.n_gold, "n_pred": self.n_pred,
            "n_correct": self.n_correct, "n_tokens": self.n_tokens,
        }
        for t, s in self.per_type.items():
            out[t] = {"precision": s.precision, "recall": s.recall, "f1": s.f1,
                      "n_gold": s.n_gold, "n_pred": s.n_pred, "n_correct": s.n_correct}
        return out

    def report(self):
        """The text conlleval.pl prints for the same tags (percentages to 2 decimals)."""

        def pct(c, n):
            return 100 * c / n if n > 0 else 0.0

        def fb1(p, r):  # conlleval computes F from the percentages
            return 2 * p * r / (p + r) if p + r > 0 else 0.0

        p, r = pct(self.n_correct, self.n_pred), pct(self.n_correct, self.n_gold)
        lines = [
            f"processed {self.n_tokens} tokens with {self.n_gold} phrases; "
            f"found: {self.n_pred} phrases; correct: {self.n_correct}."
        ]
        if self.n_tokens > 0:
            lines.append(
                f"accuracy: {pct(self.n_correct_tags, self.n_tokens):6.2f}%; precision: {p:6.2f}%; "
                f"recall: {r:6.2f}%; FB1: {fb1(p, r):6.2f}"
            )
        for t in sorted(self.per_type):
            s = self.per_type[t]
            tp, tr = pct(s.n_correct, s.n_pred), pct(s.n_correct, s.n_gold)
            lines.append(
                f"{t:>17}: precision: {tp:6.2f}%; recall: {tr:6.2f}%; FB1: {fb1(tp, tr):6.2f}  {s.n_pred}"
            )
        return "\n".join(lines) + "\n"


def _sentences(seqs, what):
    seqs = list(seqs)
    if seqs and all(isinstance(t, str) for t in seqs):
        return [seqs]  # one flat sequence
    for s in seqs:
        if isinstance(s, str):
            raise TypeError(f"{what}: mix of tags and tag sequences")
    return [list(s) for s in seqs]


def entity_scores(gold, pred):
    """Score predicted tags against gold tags (lists of per-sentence tag lists, or one flat list)."""
    gold = _sentences(gold, "entity_scores: gold")
    pred = _sentences(pred, "entity_scores: pred")
    if len(gold) != len(pred):
        raise ValueError(f"entity_scores: {len(gold)} gold sentences but {len(pred)} predicted")
    scores = EntityScores()
    per_type = {}
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"entity_scores: sentence {i} has {len(g)} gold tags but {len(p)} predicted")
        ge, pe = get_entities(g), get_entities(p)
        correct = set(ge).intersection(pe)
        for t, _, _ in ge:
            per_type.setdefault(t, TypeScores()).n_gold += 1
        for t, _, _ in pe:
            per_type.setdefault(t, TypeScores()).n_pred += 1
        for t, _, _ in correct:
            per_type[t].n_correct += 1
        scores.n_gold += len(ge)
        scores.n_pred += len(pe)
        scores.n_correct += len(correct)
        scores.n_tokens += len(g)
        scores.n_correct_tags += sum(a == b for a, b in zip(g, p))
    scores.per_type = dict(sorted(per_type.items()))
    return scores


def token_accuracy(gold, pred):
    """Fraction of tokens whose predicted tag equals the gold tag."""
    return entity_scores(gold, pred).accuracy


def f1_score(gold, pred):
    """Overall entity-level (micro) F1."""
    return entity_scores(gold, pred).f1
