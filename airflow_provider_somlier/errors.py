"""The exceptions SoMLier users see.

Every error names the offending value and says what was expected, so that a
failed task's log tells the DAG author what to change without reading code.
All of them derive from :class:`SomlierError`. Errors in the user's input derive
from :class:`SomlierInputError`, an ``AirflowFailException``: retrying cannot fix
them, so Airflow fails the task at once. Unreachable services stay retryable.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class SomlierError(AirflowException):
    """Base class of every error SoMLier raises on purpose."""


class SomlierInputError(SomlierError, AirflowFailException):
    """Bad input: a retry would fail the same way."""


class InvalidRefError(SomlierInputError, ValueError):
    """A model or table reference is malformed or contains unsafe characters."""


class ModelNotFoundError(SomlierInputError):
    """The registry has no such model, version or alias."""


class RegistryUnavailableError(SomlierError):
    """The MLflow tracking/registry endpoint could not be reached (retryable)."""


class WarehouseUnavailableError(SomlierError):
    """A BigQuery (or emulator) call failed in transport or missed its deadline (retryable).

    The message names the step (``create_read_session``, ``upload``…) and the endpoint.
    """


class TableNotFoundError(SomlierInputError):
    """A source or destination table does not exist."""


class ReadRefusedError(SomlierInputError):
    """BigQuery answered a read session with a refusal (a column name or filter it will not read,
    no permission): the same request would be refused again, so the task fails at once."""


class TransactionTooLargeError(SomlierInputError):
    """The day's transaction would exceed BigQuery's query-length limit (a very wide profile)."""


class ColumnNotFoundError(SomlierInputError):
    """A column the run needs is missing from the source table."""


class UnsupportedColumnTypeError(SomlierInputError):
    """A column's type cannot serve its role: a load column that is not DATE, DATETIME or
    TIMESTAMP, or a passthrough column the staging file cannot carry (TIME, JSON, RECORD…)."""


class InvalidWindowError(SomlierInputError, ValueError):
    """``dataset_load_window`` is not a whole number of days between 0 and ten years."""


class FeatureMismatchError(SomlierInputError):
    """Feature columns are missing or of a type the model signature does not accept."""


class NullFeatureError(SomlierInputError):
    """A feature column holds NULLs or NaNs on the target day; the model cannot score them."""


class InfiniteFeatureError(SomlierInputError):
    """A feature column holds an infinite value on the target day, for a model that refuses them."""


class DestinationSchemaError(SomlierInputError):
    """The destination table exists with a schema incompatible with this run's output."""


class ColumnCollisionError(SomlierInputError, ValueError):
    """A passthrough column would overwrite a prediction or lineage column."""


class ModelPredictionError(SomlierInputError):
    """The model raised, or returned a different number of rows than it was given."""


class EmptyWindowError(SomlierInputError):
    """The target day holds no rows and ``on_empty='fail'`` was asked for."""


class InvalidArgumentError(SomlierInputError, ValueError):
    """An operator argument has a value outside what it accepts."""


class RunNotRegistrableError(SomlierInputError):
    """A training run cannot become a model version: it did not finish, or logged no model or metric."""


class ShardedRunError(SomlierError, AirflowFailException):
    """A sharded run cannot finish as planned; retrying the task cannot help, clearing the group can."""


class ReadSessionExpiredError(ShardedRunError):
    """A shard's read session expired or was lost: clear the whole task group so the plan opens a new one."""


class ShardCountMismatchError(ShardedRunError):
    """The shards staged a different number of rows than the plan counted in the source."""


class ProfileMismatchError(SomlierInputError):
    """Two profiles that should describe the same columns do not (another model's, or another table's)."""


class QualitySettingError(InvalidArgumentError):
    """A ``quality_checks``, ``baseline`` or ``on_quality_failure`` setting is not one SoMLier knows."""


class QualityCheckError(SomlierInputError):
    """The day failed its quality checks (``on_quality_failure='fail'``): its old rows were kept.

    ``failures`` holds every failed check with its column, figure and threshold.
    """

    def __init__(self, message: str, failures: list | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures or [])
