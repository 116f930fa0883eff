"""Model lifecycle on MLflow: parameter grids, run search, registration, somlier.yaml."""
