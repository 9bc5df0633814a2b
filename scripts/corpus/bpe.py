"""Byte-level BPE: chunks (a word with its leading space, a number, a run of
punctuation, whitespace) are UTF-8 bytes 0..255; merge k makes id 256 + k from the
most frequent adjacent pair (ties: the smaller pair), never across chunks. Encoding
applies merges in the order they were learnt, which reproduces training."""
import heapq
import re
from collections import Counter, defaultdict

CHUNK = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


def chunks(text):
    return [c.encode("utf-8") for c in CHUNK.findall(text)]


def _merge(seq, pair, new):
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == pair[0] and seq[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def train(texts, n_merges):
    """Merges [(a, b), ...] learnt from texts; stops early when no pair occurs twice."""
    words = Counter(c for t in texts for c in chunks(t))
    seqs = [list(w) for w in words]
    freq = list(words.values())
    pairs, where = Counter(), defaultdict(set)
    for i, s in enumerate(seqs):
        for p in zip(s, s[1:]):
            pairs[p] += freq[i]
            where[p].add(i)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        negc, pair = heapq.heappop(heap)
        if pairs.get(pair, 0) != -negc:
            continue  # stale entry: the count changed since it was pushed
        if -negc < 2:
            break
        new = 256 + len(merges)
        merges.append(pair)
        touched = set()
        for i in sorted(where.pop(pair)):
            s, f = seqs[i], freq[i]
            for p in zip(s, s[1:]):
                pairs[p] -= f
                where[p].discard(i)
                touched.add(p)
            s = seqs[i] = _merge(s, pair, new)
            for p in zip(s, s[1:]):
                pairs[p] += f
                where[p].add(i)
                touched.add(p)
        for p in sorted(touched):
            if pairs[p] <= 0:
                del pairs[p]
            elif p != pair:
                heapq.heappush(heap, (-pairs[p], p))
        pairs.pop(pair, None)
    return merges


class Encoder:
    def __init__(self, merges):
        self.merges = list(merges)
        self.rank = {p: k for k, p in enumerate(self.merges)}
        self.cache = {}

    def _chunk(self, b):
        s, none = list(b), len(self.merges)
        while len(s) > 1:
            r = min(self.rank.get(p, none) for p in zip(s, s[1:]))
            if r == none:
                break
            s = _merge(s, self.merges[r], 256 + r)
        return s

    def encode(self, text):
        out = []
        for c in chunks(text):
            if c not in self.cache:
                self.cache[c] = self._chunk(c)
            out.extend(self.cache[c])
        return out


def decode(ids, merges):
    table = [bytes([b]) for b in range(256)]
    for a, b in merges:
        table.append(table[a] + table[b])
    return b"".join(table[i] for i in ids).decode("utf-8", errors="replace")
