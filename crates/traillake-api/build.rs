//! Generates the operations' shapes from `proto/traillake/v1/*.proto` with prost, and adds the
//! serde attributes that make the same types speak the AWS JSON wire: member names as written in
//! the .proto, absent members omitted, timestamps as epoch seconds, enums as their AWS strings,
//! bytes as base64.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};

const PACKAGE: &str = "traillake.v1";

/// Messages whose empty lists are left out on the JSON wire: the operators a field selector does
/// not use, and the members of a store description that the answering operation does not return.
/// Every other list is written even when empty, as clients index `resp["EventDataStores"]`.
const OMIT_EMPTY_LISTS: &[&str] = &[
    "AdvancedFieldSelector",
    "EventDataStoreDescription",
    "ChannelDescription",
    "EventSelectorsResponse",
    "EventConfiguration",
];

/// Request members that may be absent but, when given, must hold at least one entry: an explicit
/// `[]` is refused rather than read as absent (UpdateChannel's Destinations has `min` 1 in the
/// model; an update cannot leave a store without selectors).
const NON_EMPTY_WHEN_GIVEN: &[&str] = &[
    "UpdateEventDataStoreRequest.AdvancedEventSelectors",
    "UpdateChannelRequest.Destinations",
];

/// Messages of one field that the JSON wire writes as that field alone: a result row is a bare
/// list of columns, a column a bare one-entry map.
const TRANSPARENT: &[&str] = &["QueryResultRow", "QueryResultColumn"];

fn main() {
    // Read at run time: a build script compiled for another checkout of the same sources is reused.
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../../proto");
    let proto_dir = root.join("traillake/v1");
    let mut protos: Vec<PathBuf> = std::fs::read_dir(&proto_dir)
        .expect("proto/traillake/v1 is readable")
        .map(|entry| entry.expect("proto entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    protos.sort();
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path().expect("vendored protoc"),
    };
    let well_known = protoc_bin_vendored::include_path().expect("vendored protoc includes");

    let mut config = prost_build::Config::new();
    config.protoc_executable(&protoc);
    let fds = config
        .load_fds(&protos, &[root, well_known])
        .expect("protoc compiles proto/");

    let mut enum_impls = String::new();
    let mut non_empty_found = 0;
    for file in fds.file.iter().filter(|f| f.package() == PACKAGE) {
        for message in &file.message_type {
            let path = format!(".{PACKAGE}.{}", message.name());
            if TRANSPARENT.contains(&message.name()) {
                assert_eq!(message.field.len(), 1, "{path}: a transparent message has one field");
                config.message_attribute(
                    &path,
                    "#[derive(serde::Serialize, serde::Deserialize)]\n#[serde(transparent)]",
                );
                continue;
            }
            config.message_attribute(
                &path,
                "#[derive(serde::Serialize, serde::Deserialize)]\n#[serde(default)]",
            );
            for field in &message.field {
                let field_path = format!("{path}.{}", field.name());
                let omit_empty = OMIT_EMPTY_LISTS.contains(&message.name());
                let non_empty = NON_EMPTY_WHEN_GIVEN.contains(&format!("{}.{}", message.name(), field.name()).as_str());
                non_empty_found += usize::from(non_empty);
                for attribute in field_attributes(field, omit_empty, non_empty) {
                    config.field_attribute(&field_path, attribute);
                }
            }
        }
        for enumeration in &file.enum_type {
            // Variant names (`FixedRetentionPricing`) are how the catalog persists enum values.
            let path = format!(".{PACKAGE}.{}", enumeration.name());
            config.enum_attribute(&path, "#[derive(serde::Serialize, serde::Deserialize)]");
            write_wire_enum(&mut enum_impls, enumeration);
        }
    }

    assert_eq!(
        non_empty_found,
        NON_EMPTY_WHEN_GIVEN.len(),
        "every NON_EMPTY_WHEN_GIVEN member is in proto/"
    );
    config.compile_fds(fds).expect("prost generates the shapes");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out_dir.join("wire_enums.rs"), enum_impls).expect("write wire_enums.rs");
}

/// Returns the serde attributes of one field.
fn field_attributes(field: &prost_types::FieldDescriptorProto, omit_empty_lists: bool, non_empty: bool) -> Vec<String> {
    let name = field.name();
    let mut attributes = vec![format!("#[serde(rename = \"{name}\")]")];
    let repeated = field.label() == Label::Repeated;
    if repeated {
        assert!(
            field.r#type() != Type::Enum && field.r#type() != Type::Bytes,
            "{name}: repeated enums and bytes need a wire adapter first"
        );
        if field.type_name() == ".google.protobuf.Timestamp" {
            attributes.push(
                "#[serde(serialize_with = \"crate::wire::serialize_timestamps\", \
                 deserialize_with = \"crate::wire::deserialize_timestamps\")]"
                    .into(),
            );
            return attributes;
        }
        let reader = if non_empty { "non_empty_list" } else { "null_as_default" };
        attributes.push(format!("#[serde(deserialize_with = \"crate::wire::{reader}\")]"));
        if omit_empty_lists {
            attributes.push("#[serde(skip_serializing_if = \"Vec::is_empty\")]".into());
        }
        return attributes;
    }
    attributes.push("#[serde(skip_serializing_if = \"Option::is_none\")]".into());
    match field.r#type() {
        Type::Enum => {
            let rust_type = rust_enum_name(field.type_name());
            attributes.push(format!(
                "#[serde(serialize_with = \"crate::wire::serialize_enum::<{rust_type}, _>\", \
                 deserialize_with = \"crate::wire::deserialize_enum::<{rust_type}, _>\")]"
            ));
        }
        Type::Bytes => {
            attributes.push(
                "#[serde(serialize_with = \"crate::wire::serialize_bytes\", \
                 deserialize_with = \"crate::wire::deserialize_bytes\")]"
                    .into(),
            );
        }
        Type::Message if field.type_name() == ".google.protobuf.Timestamp" => {
            attributes.push(
                "#[serde(serialize_with = \"crate::wire::serialize_timestamp\", \
                 deserialize_with = \"crate::wire::deserialize_timestamp\")]"
                    .into(),
            );
        }
        _ => {}
    }
    attributes
}

/// Returns the Rust name of a top-level enum of the package.
fn rust_enum_name(type_name: &str) -> String {
    let name = type_name
        .strip_prefix(&format!(".{PACKAGE}."))
        .unwrap_or_else(|| panic!("{type_name}: enums must be top-level in {PACKAGE}"));
    assert!(!name.contains('.'), "{type_name}: nested enums are not supported");
    name.to_string()
}

/// Writes the `WireEnum` impl of one enum: its AWS names are the value names without the prefix.
fn write_wire_enum(out: &mut String, enumeration: &prost_types::EnumDescriptorProto) {
    let name = enumeration.name();
    let prefix = format!("{}_", screaming_snake(name));
    let mut wire_names = Vec::new();
    for value in &enumeration.value {
        let wire = value
            .name()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{}: enum values must start with {prefix}", value.name()));
        if value.number() != 0 {
            wire_names.push(format!("\"{wire}\""));
        }
    }
    writeln!(
        out,
        "impl crate::wire::WireEnum for {name} {{\n    const PREFIX: &'static str = \"{prefix}\";\n    \
         const WIRE_NAMES: &'static [&'static str] = &[{}];\n    \
         fn proto_name(self) -> &'static str {{ self.as_str_name() }}\n    \
         fn from_proto_name(name: &str) -> Option<Self> {{ Self::from_str_name(name) }}\n}}",
        wire_names.join(", ")
    )
    .expect("write to string");
}

/// Returns `EventDataStoreStatus` as `EVENT_DATA_STORE_STATUS`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
