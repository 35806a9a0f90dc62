//! HELLO: each side's capabilities and the identity of the migration, and their negotiation.
//!
//! Payload (offsets in bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `max_version` u16: the newest protocol version the sender speaks |
//! | 2 | 1 | `role` u8: 0 source, 1 destination |
//! | 3 | 1 | `flags` u8: bit 0 = resume (source only); other bits zero |
//! | 4 | 4 | `page_size` u32 |
//! | 8 | 8 | `page_count` u64 |
//! | 16 | 4 | `encodings` u32: bit `t` = encoding tag `t` supported |
//! | 20 | 4 | `max_frame_payload` u32: the largest payload the sender accepts |
//! | 24 | 8 | `features` u64 |
//! | 32 | 16 | `migration_id` |
//! | 48 | 1 | `name_len` u8 |
//! | 49 | name_len | `name`: UTF-8 |

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::error::{Error, InvalidMessage, PeerIncompatible};
use crate::frame::{Limits, Reader, VERSION};
use crate::{Encoding, EncodingSet, PageCount, PageSize};

/// Which end of the migration a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that holds the running VM and sends its memory.
    Source,
    /// The side that receives the memory and runs the VM afterwards.
    Destination,
}

/// Optional protocol features, as bits of a `u64`. Two peers use the features both announce;
/// bits this version does not define are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features(pub u64);

impl Features {
    /// Post-copy: the destination may run the VM before every page arrived (POSTCOPY_BEGIN,
    /// PAGE_REQUEST, deferred bitmaps).
    pub const POSTCOPY: Features = Features(1 << 0);
    /// Mirror: after a page is copied, the source forwards each write to it.
    pub const MIRROR: Features = Features(1 << 1);
    /// Resume: an interrupted migration can continue on a new connection (RESUME).
    pub const RESUME: Features = Features(1 << 2);
    /// Not a capability but a state, meaningful only in a destination's HELLO answering a
    /// resume HELLO: the kept migration is in post-copy (the destination processed
    /// POSTCOPY_BEGIN and runs the guest), so it resumes into PostCopy. Ignored elsewhere;
    /// never part of the negotiated features.
    pub const POSTCOPY_RUNNING: Features = Features(1 << 3);

    /// No features.
    pub fn empty() -> Features {
        Features(0)
    }

    /// Every feature this version defines.
    pub fn all_known() -> Features {
        Features(Self::POSTCOPY.0 | Self::MIRROR.0 | Self::RESUME.0)
    }

    /// Whether every feature of `other` is in this set.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The features in either set.
    pub fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// The features in both sets.
    pub fn intersection(self, other: Features) -> Features {
        Features(self.0 & other.0)
    }
}

/// The name of one migration: 16 bytes the operator (or the source) chooses, unique per
/// migration. The destination accepts only the migration it reserved for, and a resume names
/// the migration it continues.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MigrationId(pub [u8; 16]);

impl fmt::Debug for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MigrationId({self})")
    }
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A HELLO frame.
///
/// ```
/// use pagewire_codec::frame::{Features, Hello, Limits, MigrationId, Role};
/// use pagewire_codec::{EncodingSet, PageCount, PageSize};
/// let source = Hello::new(Role::Source, MigrationId([7; 16]), PageSize::KIB_4, PageCount(1 << 18));
/// let mut destination = source.clone();
/// destination.role = Role::Destination;
/// destination.features = Features::RESUME;
/// let agreed = Hello::negotiate(&source, &destination).unwrap();
/// assert_eq!(agreed.features, Features::RESUME);
/// assert_eq!(agreed.encodings, EncodingSet::all_known());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The newest protocol version the sender speaks.
    pub max_version: u16,
    /// The sender's role.
    pub role: Role,
    /// Whether the source resumes an interrupted migration (always false from a destination).
    pub resume: bool,
    /// The VM's page size.
    pub page_size: PageSize,
    /// The VM's page count.
    pub page_count: PageCount,
    /// The encodings the sender supports (zero runs and raw are mandatory).
    pub encodings: EncodingSet,
    /// The largest frame payload the sender accepts.
    pub max_frame_payload: u32,
    /// The features the sender supports.
    pub features: Features,
    /// The migration's name.
    pub migration_id: MigrationId,
    /// A name of the VM for people (at most 255 bytes of UTF-8).
    pub vm_name: String,
}

/// What two hellos agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The migration.
    pub migration_id: MigrationId,
    /// The page size.
    pub page_size: PageSize,
    /// The page count.
    pub page_count: PageCount,
    /// The encodings both support.
    pub encodings: EncodingSet,
    /// The features both support.
    pub features: Features,
    /// The largest frame payload the source accepts (the destination writes at most this).
    pub source_max_frame_payload: u32,
    /// The largest frame payload the destination accepts (the source writes at most this).
    pub destination_max_frame_payload: u32,
}

impl Negotiated {
    /// `base` limits narrowed to the negotiated memory and encodings.
    pub fn limits(&self, base: Limits) -> Limits {
        base.with_memory(self.page_size, self.page_count, self.encodings)
    }
}

const FIXED_LEN: usize = 49;
const FLAG_RESUME: u8 = 1;

impl Hello {
    /// The longest VM name.
    pub const MAX_NAME_LEN: usize = 255;

    /// A hello with every encoding and feature this version knows, the default frame limit,
    /// and no VM name.
    pub fn new(
        role: Role,
        migration_id: MigrationId,
        page_size: PageSize,
        page_count: PageCount,
    ) -> Hello {
        Hello {
            max_version: VERSION,
            role,
            resume: false,
            page_size,
            page_count,
            encodings: EncodingSet::all_known(),
            max_frame_payload: Limits::DEFAULT_MAX_FRAME_PAYLOAD,
            features: Features::all_known(),
            migration_id,
            vm_name: String::new(),
        }
    }

    /// Checks that the source's and the destination's hellos describe the same migration and
    /// can work together, and returns what they agree on.
    pub fn negotiate(source: &Hello, destination: &Hello) -> Result<Negotiated, PeerIncompatible> {
        if source.migration_id != destination.migration_id {
            return Err(PeerIncompatible::OtherVm("migration id"));
        }
        if source.page_size != destination.page_size {
            return Err(PeerIncompatible::OtherVm("page size"));
        }
        if source.page_count != destination.page_count {
            return Err(PeerIncompatible::OtherVm("page count"));
        }
        for hello in [source, destination] {
            for mandatory in [Encoding::ZeroRun, Encoding::Raw] {
                if !hello.encodings.contains(mandatory) {
                    return Err(PeerIncompatible::MissingMandatoryEncoding(mandatory));
                }
            }
            let needed = Limits::min_frame_payload(hello.page_size);
            if hello.max_frame_payload < needed {
                return Err(PeerIncompatible::FrameLimitTooSmall {
                    max_frame_payload: hello.max_frame_payload,
                    needed,
                });
            }
        }
        Ok(Negotiated {
            migration_id: source.migration_id,
            page_size: source.page_size,
            page_count: source.page_count,
            encodings: source.encodings.intersection(destination.encodings),
            features: source.features.intersection(destination.features),
            source_max_frame_payload: source.max_frame_payload.min(Limits::HARD_MAX_FRAME_PAYLOAD),
            destination_max_frame_payload: destination
                .max_frame_payload
                .min(Limits::HARD_MAX_FRAME_PAYLOAD),
        })
    }

    pub(crate) fn check(&self) -> Result<(), InvalidMessage> {
        if self.vm_name.len() > Self::MAX_NAME_LEN {
            return Err(InvalidMessage::OverLimit {
                field: "hello vm name",
                value: self.vm_name.len() as u64,
                max: Self::MAX_NAME_LEN as u64,
            });
        }
        if self.resume && self.role == Role::Destination {
            return Err(InvalidMessage::InvalidValue {
                field: "hello flags",
                value: FLAG_RESUME.into(),
            });
        }
        Ok(())
    }

    pub(crate) fn payload_len(&self) -> usize {
        FIXED_LEN + self.vm_name.len()
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u16_le(self.max_version);
        out.put_u8(match self.role {
            Role::Source => 0,
            Role::Destination => 1,
        });
        out.put_u8(if self.resume { FLAG_RESUME } else { 0 });
        out.put_u32_le(self.page_size.get());
        out.put_u64_le(self.page_count.0);
        out.put_u32_le(self.encodings.0);
        out.put_u32_le(self.max_frame_payload);
        out.put_u64_le(self.features.0);
        out.put_slice(&self.migration_id.0);
        out.put_u8(self.vm_name.len() as u8);
        out.put_slice(self.vm_name.as_bytes());
    }

    pub(crate) fn decode_payload(reader: &mut Reader) -> Result<Hello, Error> {
        let max_version = reader.u16("hello max version")?;
        let role = match reader.u8("hello role")? {
            0 => Role::Source,
            1 => Role::Destination,
            other => {
                return Err(InvalidMessage::InvalidValue {
                    field: "hello role",
                    value: other.into(),
                }
                .into());
            }
        };
        let flags = reader.u8("hello flags")?;
        if flags & !FLAG_RESUME != 0 {
            return Err(InvalidMessage::ReservedNotZero {
                field: "hello flags",
                value: flags.into(),
            }
            .into());
        }
        let page_size = reader.u32("hello page size")?;
        let page_size = PageSize::new(page_size)
            .map_err(|_| PeerIncompatible::UnsupportedPageSize(page_size))?;
        let page_count = PageCount(reader.u64("hello page count")?);
        let encodings = EncodingSet(reader.u32("hello encodings")?);
        let max_frame_payload = reader.u32("hello max frame payload")?;
        let features = Features(reader.u64("hello features")?);
        let migration_id = MigrationId(reader.array("hello migration id")?);
        let name_len = reader.u8("hello vm name length")?;
        let vm_name = utf8(
            "hello vm name",
            reader.take("hello vm name", name_len.into())?,
        )?;
        let hello = Hello {
            max_version,
            role,
            resume: flags & FLAG_RESUME != 0,
            page_size,
            page_count,
            encodings,
            max_frame_payload,
            features,
            migration_id,
            vm_name,
        };
        hello.check()?;
        Ok(hello)
    }
}

/// Text fields: the bytes must be UTF-8.
pub(crate) fn utf8(field: &'static str, bytes: Bytes) -> Result<String, InvalidMessage> {
    String::from_utf8(bytes.to_vec()).map_err(|error| InvalidMessage::NotUtf8 {
        field,
        valid_up_to: error.utf8_error().valid_up_to(),
    })
}
