"""Dataset workflows: import a directory of Personalize-format CSVs, or seed a tenant with synthetic data."""

from pathlib import Path

from datasets.importers import ImportReport, import_interactions, import_items, import_users
from datasets.synthetic import generate, write_csvs


def dataset_import_dir(*, tenant, directory: Path) -> list[ImportReport]:
    """users.csv, items.csv and interactions.csv from one directory, in the order their references need."""
    reports = []
    for name, importer in (("users", import_users), ("items", import_items), ("interactions", import_interactions)):
        path = directory / f"{name}.csv"
        if path.is_file():
            reports.append(importer(path, tenant=tenant))
    return reports


def dataset_seed_synthetic(*, tenant, directory: Path, seed: int = 7, **sizes) -> list[ImportReport]:
    directory.mkdir(parents=True, exist_ok=True)
    write_csvs(generate(seed=seed, **sizes), directory)
    return dataset_import_dir(tenant=tenant, directory=directory)
