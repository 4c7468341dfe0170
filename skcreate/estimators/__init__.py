"""The estimators: scikit-learn-style recommenders built from the parts (:mod:`skcreate.nn`)
and trained by :mod:`skcreate.training`, and the model-file writer their ``save`` uses."""
