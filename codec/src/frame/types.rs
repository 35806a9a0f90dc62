//! [`FrameType`]: the 16-bit type of a frame, with a named constant per frame this version
//! defines (an unknown type is a value, not a parse failure).

use std::fmt;

/// The type field of a frame.
///
/// Bit 15 ([`FrameType::OPTIONAL_BIT`]) marks an *optional* frame: a reader that does not know
/// an optional type skips the frame; an unknown type without the bit is an incompatible peer.
///
/// ```
/// use pagewire_codec::frame::FrameType;
/// assert_eq!(FrameType::PAGE_BATCH.name(), Some("PAGE_BATCH"));
/// assert!(!FrameType::PAGE_BATCH.is_optional());
/// assert!(FrameType(0x8123).is_optional());
/// assert_eq!(FrameType(0x8123).to_string(), "0x8123");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameType(pub u16);

macro_rules! frame_types {
    ($($(#[$doc:meta])* $name:ident = $code:expr,)*) => {
        impl FrameType {
            $($(#[$doc])* pub const $name: FrameType = FrameType($code);)*

            /// Every frame type this version defines, in code order.
            pub const KNOWN: &'static [FrameType] = &[$(FrameType::$name),*];

            /// The constant's name for a type this version defines.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(FrameType::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

frame_types! {
    /// Capabilities and the identity of the migration (both directions, first frame).
    HELLO = 0x0001,
    /// The destination accepts or refuses the migration.
    RESERVATION = 0x0002,
    /// The destination resumes an interrupted migration, with the pages it holds.
    RESUME = 0x0003,
    /// An iteration of page batches begins.
    ITERATION_START = 0x0010,
    /// Page records of one iteration.
    PAGE_BATCH = 0x0011,
    /// An iteration ends, with counts for checking.
    ITERATION_END = 0x0012,
    /// A set of pages (dirty, received or deferred).
    BITMAP = 0x0013,
    /// The source has suspended the VM: stop-and-copy begins.
    SUSPEND = 0x0020,
    /// A chunk of the VM's device state (opaque bytes).
    DEVICE_STATE = 0x0021,
    /// The destination runs the VM before all pages arrived (post-copy).
    POSTCOPY_BEGIN = 0x0022,
    /// Post-copy: the destination asks for pages it faulted on.
    PAGE_REQUEST = 0x0023,
    /// The source's digest of the whole memory.
    COMMIT_DIGEST = 0x0030,
    /// The destination's verdict on the digest.
    COMMIT_ANSWER = 0x0031,
    /// The source tells the destination to run the VM.
    ACTIVATE = 0x0040,
    /// The destination runs the VM; the source may free it.
    ACTIVATED = 0x0041,
    /// Either side gives up, with a reason.
    ABORT = 0x00ff,
}

impl FrameType {
    /// The bit that marks a frame a reader may skip when it does not know the type.
    pub const OPTIONAL_BIT: u16 = 0x8000;

    /// Whether a reader that does not know this type may skip the frame.
    pub fn is_optional(self) -> bool {
        self.0 & Self::OPTIONAL_BIT != 0
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}
