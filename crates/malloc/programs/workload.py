# A short Python workload for `cargo xtask preload`: dicts, strings, sorting, and
# lists that grow (realloc). It prints only results, so that the output under
# heaplab's malloc can be compared with the output under the C library's.
import collections
import json

words = [f"{(i * 7919) % 5003:x}-{i % 17}" for i in range(30000)]
counts = collections.Counter(w.split("-")[1] for w in words)
print(sorted(counts.items())[:5])

table = {w: len(w) * i for i, w in enumerate(words)}
print(len(table), sum(table.values()) % 1000003)

text = " ".join(sorted(set(words), key=lambda w: (len(w), w)))
print(len(text), text[:40])

grown = []
for i in range(20000):
    grown.append(str(i) * (i % 13))
print(sum(map(len, grown)))

blob = json.dumps({"rows": [{"k": k, "v": list(range(k % 50))} for k in range(2000)]})
print(len(blob), json.loads(blob)["rows"][1999]["v"][-1])
print(bytes(range(256)).hex()[:32], "".join(reversed("heaplab")))
