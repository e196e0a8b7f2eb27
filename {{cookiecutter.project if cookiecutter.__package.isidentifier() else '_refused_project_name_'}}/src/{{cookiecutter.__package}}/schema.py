"""The data: the target column, its classes, and each feature with its kind.

data/dataset.csv has a header naming ``TARGET`` and every feature of ``FEATURES`` (in any order);
``/invocations`` takes a row's features in this order (or as an object keyed by name). A feature
is ``Numeric()``, ``Categorical()`` or ``Boolean()``, nullable unless it says
``nullable=False`` (ci_scripts/schema.py). ``CLASSES`` are the target's values, names or numbers
(None for a regression). The platform reads this file for every step, so a new dataset is a change
here and to data/dataset.csv: ``python -m ci_scripts data adopt FILE --target COLUMN`` writes both.
"""

from __future__ import annotations

from ci_scripts.schema import Numeric

TARGET = "target"
{%- if cookiecutter.problem_type == "binary_classification" %}
# target: 1 = benign, 0 = malignant, as in sklearn's copy of the dataset
CLASSES: tuple[int, ...] | None = (0, 1)
POSITIVE_CLASS = 1  # the class whose probability is reported and scored (AUC, F1, ...)

FEATURES = dict.fromkeys(
    (
        "mean_radius",
        "mean_texture",
        "mean_perimeter",
        "mean_area",
        "mean_smoothness",
        "mean_compactness",
        "mean_concavity",
        "mean_concave_points",
        "mean_symmetry",
        "mean_fractal_dimension",
        "radius_error",
        "texture_error",
        "perimeter_error",
        "area_error",
        "smoothness_error",
        "compactness_error",
        "concavity_error",
        "concave_points_error",
        "symmetry_error",
        "fractal_dimension_error",
        "worst_radius",
        "worst_texture",
        "worst_perimeter",
        "worst_area",
        "worst_smoothness",
        "worst_compactness",
        "worst_concavity",
        "worst_concave_points",
        "worst_symmetry",
        "worst_fractal_dimension",
    ),
    Numeric(),
)
{%- elif cookiecutter.problem_type == "multiclass_classification" %}
# target: the cultivar (0, 1 or 2) of each wine, as in sklearn's copy of the dataset
CLASSES: tuple[int, ...] | None = (0, 1, 2)

FEATURES = dict.fromkeys(
    (
        "alcohol",
        "malic_acid",
        "ash",
        "alcalinity_of_ash",
        "magnesium",
        "total_phenols",
        "flavanoids",
        "nonflavanoid_phenols",
        "proanthocyanins",
        "color_intensity",
        "hue",
        "od280_od315_of_diluted_wines",
        "proline",
    ),
    Numeric(),
)
{%- else %}
# target: disease progression one year after baseline, as in sklearn's unscaled copy
CLASSES: tuple[int, ...] | None = None  # a regression: the target is any finite number

FEATURES = dict.fromkeys(
    ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"),
    Numeric(),
)
{%- endif %}
