"""The formulas, pure and stateless (imports nothing above this folder): the bracket tax
(tax.py, constraints.py), the players' rewards (rewards.py, paper Eq. 8), welfare and
the vote (welfare.py, voting.py, their registry.py), plus the validators, the
hyperparameter declarations and the optional-extras helper every layer uses."""
