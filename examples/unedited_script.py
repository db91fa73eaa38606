"""A training script that does not know about autolog.

The demo runs it unedited with ``python -m autolog run --experiment zero-code -- python
examples/unedited_script.py --trees 40``: the run records the forest's params, its training
metrics and model, the exact command line and the script's exit status.
"""

import argparse

from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--trees", type=int, default=50)
args = parser.parse_args()

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
forest = RandomForestClassifier(n_estimators=args.trees, random_state=0).fit(X_train, y_train)
print(f"RandomForestClassifier({args.trees} trees): test accuracy {forest.score(X_test, y_test):.3f}")
