//! The Arrow schemas of the events a store holds, as `reference/cloudtrail-lake-semantics.md` §5
//! publishes them: column and struct field names in lowercase (SQL identifiers are
//! case-insensitive, so `eventTime` and `userIdentity.sessionContext` resolve to them), every column
//! nullable. Each table also carries the hidden partition column [`EVENT_DATE`], which queries
//! never see.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use traillake_api::selectors::StoreKind;

/// The partition column: the UTC date of `eventtime` as `YYYY-MM-DD`. Kept out of query schemas.
pub const EVENT_DATE: &str = "eventdate";
/// The event time column, the sort key of every file and the main pruning key of queries.
pub const EVENT_TIME: &str = "eventtime";
/// The column that holds the original record as compact JSON text.
pub const EVENT_JSON: &str = "eventjson";

/// Returns the type of every timestamp column: microseconds in UTC, the precision Delta Lake keeps.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Returns the type of JSON objects kept as `map<string,string>`, with Delta Lake's field names.
pub fn string_map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn texts(names: &[&str]) -> Vec<Field> {
    names.iter().map(|name| text(name)).collect()
}

fn map(name: &str) -> Field {
    Field::new(name, string_map_type(), true)
}

fn timestamp(name: &str) -> Field {
    Field::new(name, timestamp_type(), true)
}

fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, true)
}

fn structure(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

fn user_identity() -> Field {
    let session_context = structure(
        "sessioncontext",
        vec![
            structure("attributes", vec![timestamp("creationdate"), text("mfaauthenticated")]),
            structure(
                "sessionissuer",
                texts(&["type", "principalid", "arn", "accountid", "username"]),
            ),
            structure(
                "webidfederationdata",
                vec![text("federatedprovider"), map("attributes")],
            ),
            text("sourceidentity"),
            text("ec2roledelivery"),
            text("ec2issuedinvpc"),
        ],
    );
    let mut fields = texts(&["type", "principalid", "arn", "accountid", "accesskeyid", "username"]);
    fields.push(session_context);
    fields.push(structure("onbehalfof", texts(&["userid", "identitystorearn"])));
    fields.push(structure(
        "inscopeof",
        texts(&["sourcearn", "sourceaccount", "issuertype", "credentialsissuedto"]),
    ));
    fields.extend(texts(&["invokedby", "identityprovider"]));
    structure("useridentity", fields)
}

fn resources() -> Field {
    let item = Field::new(
        "element",
        DataType::Struct(Fields::from(texts(&["accountid", "type", "arn", "arnprefix"]))),
        true,
    );
    Field::new("resources", DataType::List(Arc::new(item)), true)
}

/// The columns of CloudTrail events (management, data, network activity), in the published order.
static CLOUDTRAIL: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![text("eventversion"), user_identity(), timestamp(EVENT_TIME)];
    fields.extend(texts(&[
        "eventsource",
        "eventname",
        "awsregion",
        "sourceipaddress",
        "useragent",
        "errorcode",
        "errormessage",
    ]));
    fields.extend([
        map("requestparameters"),
        map("responseelements"),
        map("additionaleventdata"),
    ]);
    fields.extend(texts(&["requestid", "eventid"]));
    fields.push(boolean("readonly"));
    fields.push(resources());
    fields.extend(texts(&["eventtype", "apiversion"]));
    fields.push(boolean("managementevent"));
    fields.extend(texts(&[
        "recipientaccountid",
        "sharedeventid",
        "annotation",
        "vpcendpointid",
        "vpcendpointaccountid",
    ]));
    fields.extend([
        map("serviceeventdetails"),
        map("addendum"),
        map("edgedevicedetails"),
        map("insightdetails"),
    ]);
    fields.push(text("eventcategory"));
    fields.push(structure(
        "tlsdetails",
        texts(&["tlsversion", "ciphersuite", "clientprovidedhostheader"]),
    ));
    fields.extend(texts(&[
        "sessioncredentialfromconsole",
        EVENT_JSON,
        "eventjsonchecksum",
    ]));
    Arc::new(Schema::new(fields))
});

/// The columns of events from integrations (`ActivityAuditLog` stores fed by channels).
static ACTIVITY_AUDIT_LOG: LazyLock<SchemaRef> = LazyLock::new(|| {
    let event_data = structure(
        "eventdata",
        vec![
            text("version"),
            structure("useridentity", vec![text("type"), text("principalid"), map("details")]),
            text("useragent"),
            text("eventsource"),
            text("eventname"),
            text("eventtime"),
            text("uid"),
            map("requestparameters"),
            map("responseelements"),
            text("errorcode"),
            text("errormessage"),
            text("sourceipaddress"),
            text("recipientaccountid"),
            map("additionaleventdata"),
        ],
    );
    let mut fields = texts(&["eventversion", "eventcategory", "eventtype", "eventid"]);
    fields.push(timestamp(EVENT_TIME));
    fields.extend(texts(&["awsregion", "recipientaccountid"]));
    fields.push(structure(
        "addendum",
        texts(&["reason", "updatedfields", "originaluid", "originaleventid"]),
    ));
    fields.push(structure("metadata", texts(&["ingestiontime", "channelarn"])));
    fields.push(event_data);
    fields.push(text(EVENT_JSON));
    Arc::new(Schema::new(fields))
});

/// The columns of Config configuration items (§5.3).
static CONFIGURATION_ITEM: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut event_data = texts(&[
        "configurationitemversion",
        "configurationitemcapturetime",
        "configurationitemstatus",
        "configurationitemstateid",
        "accountid",
        "resourcetype",
        "resourceid",
        "resourcename",
        "arn",
        "awsregion",
        "availabilityzone",
        "resourcecreationtime",
    ]);
    event_data.extend([
        map("configuration"),
        map("supplementaryconfiguration"),
        text("relatedevents"),
    ]);
    event_data.push(structure(
        "relationships",
        texts(&["name", "resourcetype", "resourceid", "resourcename"]),
    ));
    event_data.push(map("tags"));
    let mut fields = texts(&["eventversion", "eventcategory", "eventtype", "eventid"]);
    fields.push(timestamp(EVENT_TIME));
    fields.extend(texts(&["awsregion", "recipientaccountid"]));
    fields.push(map("addendum"));
    fields.push(structure("eventdata", event_data));
    fields.push(text(EVENT_JSON));
    Arc::new(Schema::new(fields))
});

/// Returns the columns queries see for a store of the given kind.
///
/// Insights and Audit Manager stores get the CloudTrail columns (which include `insightdetails`):
/// nothing writes those kinds yet, as their events come from AWS services traillake does not run.
pub fn event_schema(kind: StoreKind) -> SchemaRef {
    match kind {
        StoreKind::ActivityAuditLog => ACTIVITY_AUDIT_LOG.clone(),
        StoreKind::ConfigurationItem => CONFIGURATION_ITEM.clone(),
        StoreKind::CloudTrail | StoreKind::Insight | StoreKind::Evidence => CLOUDTRAIL.clone(),
    }
}

/// Returns the columns of the stored table: the event columns followed by [`EVENT_DATE`].
pub fn table_schema(kind: StoreKind) -> SchemaRef {
    let events = event_schema(kind);
    let mut fields: Vec<Field> = events.fields().iter().map(|field| field.as_ref().clone()).collect();
    fields.push(Field::new(EVENT_DATE, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}
