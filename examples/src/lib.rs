//! Examples live in this package's examples; see embed.rs.
