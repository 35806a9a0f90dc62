//! Reason codes: why a migration was aborted, why a reservation was refused.
//!
//! Both are open sets on the wire: a code this version does not define is kept as `Unknown`
//! so a newer peer's reason is still shown, not turned into a parse failure.

macro_rules! reason_codes {
    (
        $(#[$enum_doc:meta])* $enum:ident {
            $($(#[$doc:meta])* $variant:ident = $code:expr, $text:expr;)*
        }
    ) => {
        $(#[$enum_doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $enum {
            $($(#[$doc])* $variant,)*
            /// A code this version does not define.
            Unknown(u16),
        }

        impl $enum {
            /// The 16-bit code the wire carries.
            pub fn code(self) -> u16 {
                match self {
                    $($enum::$variant => $code,)*
                    $enum::Unknown(code) => code,
                }
            }

            /// The reason a wire code names.
            pub fn from_code(code: u16) -> $enum {
                match code {
                    $($code => $enum::$variant,)*
                    other => $enum::Unknown(other),
                }
            }

            /// A short description for people.
            pub fn describe(self) -> &'static str {
                match self {
                    $($enum::$variant => $text,)*
                    $enum::Unknown(_) => "unknown reason",
                }
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} ({:#06x})", self.describe(), self.code())
            }
        }
    };
}

reason_codes! {
    /// Why a side aborts a migration (the reason code of an ABORT frame).
    ///
    /// ```
    /// use pagewire_codec::frame::AbortReason;
    /// assert_eq!(AbortReason::from_code(0x0005), AbortReason::DigestMismatch);
    /// assert_eq!(AbortReason::from_code(0x7777), AbortReason::Unknown(0x7777));
    /// ```
    AbortReason {
        /// The operator cancelled the migration.
        Cancelled = 0x0001, "cancelled by the operator";
        /// A received frame did not parse.
        MalformedFrame = 0x0002, "malformed frame";
        /// The peer broke the protocol (a frame out of phase, a bad reference, ...).
        ProtocolViolation = 0x0003, "protocol violation";
        /// The peers cannot talk to each other (version, mandatory frame, encodings, page size).
        Incompatible = 0x0004, "incompatible peer";
        /// The commit digests disagree and cannot be reconciled.
        DigestMismatch = 0x0005, "memory digest mismatch";
        /// The side ran out of a resource (memory, disk, file descriptors).
        ResourceExhausted = 0x0006, "resource exhausted";
        /// The side timed out waiting for its peer.
        Timeout = 0x0007, "timed out";
        /// The device state could not be saved or loaded.
        DeviceState = 0x0008, "device state failed";
        /// The source VM failed or stopped during migration.
        GuestFailed = 0x0009, "guest failed";
        /// An internal error of the side that aborts.
        Internal = 0x000a, "internal error";
    }
}

reason_codes! {
    /// Why a destination refuses a reservation (the reason code of a refused RESERVATION).
    ///
    /// ```
    /// use pagewire_codec::frame::RefusalReason;
    /// assert_eq!(RefusalReason::WrongVm.code(), 0x0003);
    /// ```
    RefusalReason {
        /// The destination cannot hold the memory.
        InsufficientMemory = 0x0001, "not enough memory";
        /// The destination does not support the page size.
        UnsupportedPageSize = 0x0002, "page size not supported";
        /// The hello names another VM (migration id, page size or page count) than the one the
        /// destination reserved for.
        WrongVm = 0x0003, "not the VM this destination reserved for";
        /// The destination is busy with another migration.
        Busy = 0x0004, "destination busy";
        /// No encoding set both sides can use (zero runs and raw are mandatory).
        NoCommonEncoding = 0x0005, "no common encoding";
        /// A resume names a migration the destination does not hold.
        UnknownMigration = 0x0006, "unknown migration to resume";
        /// Policy forbids this migration.
        Prohibited = 0x0007, "prohibited by policy";
    }
}
