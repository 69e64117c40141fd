"""Stock command shapes. Strict: no "5" for 5, no floats, no unknown fields."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from shared.schemas.text import NO_CONTROLS_IN_SCHEMA, READABLE

MAX_QUANTITY = 1_000_000_000
# A level can grow past one command's quantity; counts and expectations may name any sane level.
MAX_LEVEL = 10**15

CODE_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"
SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
Delta = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
Level = Annotated[int, Field(ge=0, le=MAX_LEVEL)]
# Free text (reference, reason): shared/schemas/text.py says what it may hold.
Note = Annotated[str, StringConstraints(min_length=1, max_length=200), READABLE, NO_CONTROLS_IN_SCHEMA]

# A reservation: the client's own id, unique per API key.
RESERVATION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
ReservationId = Annotated[str, StringConstraints(pattern=RESERVATION_ID_PATTERN)]
MAX_HOLD_SECONDS = 7 * 24 * 3600

LEDGER_TYPES = ("receive", "issue", "adjust", "count", "transfer_out", "transfer_in", "reserve", "release",
                "commit", "expire")


class CommandBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    reference: Note | None = None
    reason: Note | None = None
    expected_on_hand: Level | None = None
    expected_version: Level | None = None

    def stock_keys(self) -> list[tuple[str, str]]:
        """The (warehouse code, sku) levels this command touches, source first."""
        return [(self.warehouse, self.sku)]  # type: ignore[attr-defined]

    @property
    def first_warehouse(self) -> str | None:
        """Where the command is ordered; None for one that names only a reservation (its reserve's
        warehouse orders it: api/accept/writer.py looks it up)."""
        keys = self.stock_keys()
        return keys[0][0] if keys else None

    @property
    def warehouses(self) -> tuple[str, ...]:
        """Every warehouse the command names (a transfer: both sides)."""
        return tuple(warehouse for warehouse, _ in self.stock_keys())


class Receive(CommandBase):
    type: Literal["receive"]
    warehouse: Code
    sku: Sku
    quantity: Quantity


class Issue(CommandBase):
    type: Literal["issue"]
    warehouse: Code
    sku: Sku
    quantity: Quantity


class Adjust(CommandBase):
    type: Literal["adjust"]
    warehouse: Code
    sku: Sku
    delta: Delta
    reason: Note

    @model_validator(mode="after")
    def _nonzero(self) -> "Adjust":
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        return self


class Count(CommandBase):
    type: Literal["count"]
    warehouse: Code
    sku: Sku
    on_hand: Level


class Transfer(CommandBase):
    type: Literal["transfer"]
    from_warehouse: Code
    to_warehouse: Code
    sku: Sku
    quantity: Quantity

    @model_validator(mode="after")
    def _distinct(self) -> "Transfer":
        if self.from_warehouse == self.to_warehouse:
            raise ValueError("from_warehouse and to_warehouse must differ")
        return self

    def stock_keys(self) -> list[tuple[str, str]]:
        return [(self.from_warehouse, self.sku), (self.to_warehouse, self.sku)]


class Reserve(CommandBase):
    """Hold units for a checkout or a pick list, until committed, released, or expired."""

    type: Literal["reserve"]
    warehouse: Code
    sku: Sku
    quantity: Quantity
    reservation: ReservationId
    expires_in: Annotated[int, Field(ge=1, le=MAX_HOLD_SECONDS)] = 900


class Release(CommandBase):
    """Give a reservation's held units back."""

    type: Literal["release"]
    reservation: ReservationId

    def stock_keys(self) -> list[tuple[str, str]]:
        return []  # the reservation's level, found when it is applied


class Commit(CommandBase):
    """Issue held units (all that is held, or `quantity` of them; the rest stays held)."""

    type: Literal["commit"]
    reservation: ReservationId
    quantity: Quantity | None = None

    def stock_keys(self) -> list[tuple[str, str]]:
        return []


class Expire(CommandBase):
    """Not for clients: the service's own release of a reservation past its time
    (worker/expiry.py), applied like any command, in the reservation's order."""

    type: Literal["expire"]
    reservation_id: Annotated[int, Field(ge=1)]

    def stock_keys(self) -> list[tuple[str, str]]:
        return []


Command = Annotated[Receive | Issue | Adjust | Count | Transfer | Reserve | Release | Commit,
                    Field(discriminator="type")]
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)
commands_adapter: TypeAdapter[list[Command]] = TypeAdapter(list[Command])
# What a job may hold: a client's command, or one the service made itself.
StoredCommand = Annotated[Receive | Issue | Adjust | Count | Transfer | Reserve | Release | Commit | Expire,
                          Field(discriminator="type")]
stored_command_adapter: TypeAdapter[StoredCommand] = TypeAdapter(StoredCommand)


class BatchRequest(BaseModel):
    """The body of POST /v1/batches; the line limit is checked by the route (413, not 422)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["atomic", "independent"]
    commands: list[Command] = Field(min_length=1)
