"""Stable, dotted reason codes for dead letters (DESIGN §4).

They are a public interface: operators filter and replay by them, so a code is never
renamed; new failures get new codes.
"""

from enum import StrEnum


class Stage(StrEnum):
    DECODE = "decode"
    VERIFY = "verify"
    VALIDATE = "validate"
    DEDUPE = "dedupe"
    ENRICH = "enrich"
    LAND = "land"


class Reason(StrEnum):
    DECODE_NOT_AVRO = "decode.not_avro"
    DECODE_UNKNOWN_SCHEMA = "decode.unknown_schema"
    DECODE_TOO_LARGE = "decode.too_large"
    DECODE_MALFORMED = "decode.malformed"
    DECODE_EMPTY_BATCH = "decode.empty_batch"
    VERIFY_SIGNATURE_INVALID = "verify.signature_invalid"
    VERIFY_CHAIN_UNTRUSTED = "verify.chain_untrusted"
    VERIFY_CHAIN_EMPTY = "verify.chain_empty"
    VERIFY_CERT_MALFORMED = "verify.cert_malformed"
    VERIFY_CERT_EXPIRED = "verify.cert_expired"
    VERIFY_CERT_NOT_YET_VALID = "verify.cert_not_yet_valid"
    VERIFY_SENT_IN_FUTURE = "verify.sent_in_future"
    VERIFY_CERT_REVOKED = "verify.cert_revoked"
    VERIFY_CERT_NOT_APPROVED = "verify.cert_not_approved"
    VERIFY_ALGORITHM_FORBIDDEN = "verify.algorithm_forbidden"
    VERIFY_KEY_TOO_WEAK = "verify.key_too_weak"
    VERIFY_SIGNER_NOT_AUTHORIZED = "verify.signer_not_authorized"
    VALIDATE_GRADE_LEVEL = "validate.grade_level"
    VALIDATE_SCHOOL_YEAR = "validate.school_year"
    VALIDATE_PERSONAL_ID = "validate.personal_id"
    VALIDATE_BIRTH_DATE = "validate.birth_date"
    VALIDATE_SCORE = "validate.score"
    VALIDATE_ASSESSMENT = "validate.assessment"
    VALIDATE_DAYS_ABSENT = "validate.days_absent"
    VALIDATE_REVISION = "validate.revision"
    VALIDATE_SUBJECT_NOT_ALLOWED = "validate.subject_not_allowed"
    VALIDATE_QUALITIES = "validate.qualities"
    VALIDATE_LEARNING_RESULT = "validate.learning_result"
    VALIDATE_CONDUCT_RESULT = "validate.conduct_result"
    VALIDATE_PROMOTION = "validate.promotion"
    DEDUPE_REVISION_CONFLICT = "dedupe.revision_conflict"
    ENRICH_UNKNOWN_SCHOOL = "enrich.unknown_school"
    INTERNAL_ERROR = "internal.error"

    @property
    def stage(self) -> Stage:
        return Stage(self.value.split(".", 1)[0]) if not self.is_internal else Stage.DECODE

    @property
    def is_internal(self) -> bool:
        return self.value.startswith("internal.")
