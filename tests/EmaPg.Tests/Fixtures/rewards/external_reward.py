#!/usr/bin/env python3
"""A user reward speaking EmaPg's external-process protocol, with switches to misbehave for the tests.

Scores 1.0 when the response equals the ground truth (or any of a list), else 0.0. Responses starting with
HANG sleep forever, CRASH exit with code 3, NAN answer {"score": "nan"}, GARBAGE print text, BARE print a bare
number. Every line also bumps a counter so the tests can see that one process served several calls.
"""
import json
import sys
import time

served = 0
for line in sys.stdin:
    req = json.loads(line)
    served += 1
    r = req["response"]
    if r.startswith("HANG"):
        time.sleep(3600)
    if r.startswith("CRASH"):
        sys.exit(3)
    if r.startswith("NAN"):
        print(json.dumps({"score": "nan"}), flush=True)
        continue
    if r.startswith("GARBAGE"):
        print("this is not a score", flush=True)
        continue
    if r.startswith("SERVED"):
        print(served, flush=True)
        continue
    gt = req["ground_truth"]
    truths = gt if isinstance(gt, list) else [gt]
    score = 1.0 if r in truths else 0.0
    if r.startswith("BARE"):
        print(score, flush=True)
    else:
        print(json.dumps({"score": score, "data_source": req["data_source"]}), flush=True)
