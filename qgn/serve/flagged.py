"""The score of an image the domain check flags (``flagged_score``, shown by ``score_text``): below
``FLAGGED_SCORE``, under every image the model knows, so Label Studio's uncertainty sampling serves
it first."""
from __future__ import annotations


FLAGGED_SCORE = 0.001  # every image the domain check flags scores below it, every other image not (flagged_score)
FLAGGED_LOWEST = 1e-300  # the lowest flagged score: a normal double every database stores (flagged_score)


def score_text(score: float) -> str:
    """A flagged ``score`` as text, with as many digits (3 or more) as keep it below
    ``FLAGGED_SCORE``: ``:g`` printed a score just below it (a domain score a hair above ``WARN_AT``)
    as "0.001", the score of the images the model knows."""
    for digits in range(3, 18):
        text = f"{score:.{digits}g}"
        if float(text) < FLAGGED_SCORE or float(text) == score:
            return text
    return repr(score)


def flagged_score(domain_score: float) -> float:
    """The score of an image the domain check flags with ``domain_score`` (above ``WARN_AT``):
    strictly inside (0, ``FLAGGED_SCORE``), below every image the model knows, and the lower the
    farther the image is from the training images (``FLAGGED_SCORE × WARN_AT / domain_score``, not
    rounded: rounded to 6 decimals, 1.5001 and 1.5007 both scored 0.001, a tie with the images the
    model knows, and 3001 scored 0), so that uncertainty sampling serves the least known first
    (with one annotator: with several, Label Studio picks at random among the unlocked tasks). Kept at ``FLAGGED_LOWEST`` or above (as far as can be: an infinite or NaN
    score too) and below ``FLAGGED_SCORE`` (a score a hair above ``WARN_AT``)."""
    import math

    from qgn.domain import WARN_AT

    if math.isnan(domain_score):
        return FLAGGED_LOWEST
    score = FLAGGED_SCORE * WARN_AT / max(domain_score, WARN_AT)
    return min(max(score, FLAGGED_LOWEST), math.nextafter(FLAGGED_SCORE, 0.0))
