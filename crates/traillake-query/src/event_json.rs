//! `eventjson` and `eventjsonchecksum` of CloudTrail-schema stores as queries see them: the record's
//! text rebuilt from its stored form and the columns it refers to
//! ([`traillake_lake::events::event_json`]), and the checksum computed from that text. Both are
//! expressions of the projection every scan of a store ends with ([`crate::planner`]), so a query
//! that reads neither pays nothing, and a filter on `eventjson` sees the whole text.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray as _, MapArray, StringViewBuilder, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, col,
};
use traillake_lake::events::event_json::{Held, REFERENCED, checksum, rebuild, write_map, write_text, write_time};
use traillake_lake::events::schema::EVENT_JSON;

use crate::functions::call_rows;

/// The name of the checksum column.
pub const EVENT_JSON_CHECKSUM: &str = "eventjsonchecksum";

static REBUILT: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(RebuiltEventJson::new())));
static CHECKSUM: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(EventJsonChecksum::new())));

/// Returns the expression of `eventjson` as queries see it.
pub fn event_json() -> Expr {
    let mut args = vec![col(EVENT_JSON)];
    args.extend(REFERENCED.iter().map(|(name, _)| col(*name)));
    REBUILT.call(args)
}

/// Returns the expression of `eventjsonchecksum`: the checksum of [`event_json`].
pub fn event_json_checksum() -> Expr {
    CHECKSUM.call(vec![event_json()])
}

/// Returns the two functions of [`event_json`] and [`event_json_checksum`], for sessions that
/// decode serialized plans calling them by name (the workers').
pub fn functions() -> [ScalarUDF; 2] {
    [REBUILT.as_ref().clone(), CHECKSUM.as_ref().clone()]
}

/// A string column of either layout.
enum Texts<'a> {
    View(&'a datafusion::arrow::array::StringViewArray),
    Plain(&'a datafusion::arrow::array::StringArray),
}

impl<'a> Texts<'a> {
    fn of(array: &'a dyn Array) -> Result<Self> {
        if let Some(view) = array.as_string_view_opt() {
            return Ok(Self::View(view));
        }
        array.as_string_opt::<i32>().map(Self::Plain).ok_or_else(|| {
            DataFusionError::Internal(format!("a string column of eventjson is a {}", array.data_type()))
        })
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::View(array) => array.is_valid(row).then(|| array.value(row)),
            Self::Plain(array) => array.is_valid(row).then(|| array.value(row)),
        }
    }
}

/// A referenced column's values at hand.
enum Referenced<'a> {
    Text(Texts<'a>),
    Time(&'a TimestampMicrosecondArray),
    Map(&'a MapArray, Texts<'a>, Texts<'a>),
}

impl Referenced<'_> {
    /// Writes the value at `row` as the record had it; false if the row has none.
    fn write(&self, row: usize, flags: &[u8], out: &mut String) -> bool {
        match self {
            Self::Text(texts) => texts.get(row).map(|text| write_text(out, text)).is_some(),
            Self::Time(times) => times.is_valid(row) && write_time(out, times.value(row)),
            Self::Map(map, keys, values) => {
                if map.is_null(row) {
                    return false;
                }
                let offsets = map.value_offsets();
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                // Keys are never NULL (checked when the column was taken).
                let entries = (start..end).map(|entry| (keys.get(entry).unwrap_or_default(), values.get(entry)));
                write_map(out, entries, flags)
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RebuiltEventJson {
    signature: Signature,
}

impl RebuiltEventJson {
    fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RebuiltEventJson {
    fn name(&self) -> &str {
        "traillake_event_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = call_rows(&args.args);
        let arrays: Vec<ArrayRef> = args.args.iter().map(|arg| arg.to_array(rows)).collect::<Result<_>>()?;
        if arrays.len() != REFERENCED.len() + 1 {
            return Err(DataFusionError::Internal(format!(
                "traillake_event_json takes {} arguments",
                REFERENCED.len() + 1
            )));
        }
        let stored = Texts::of(arrays[0].as_ref())?;
        let mut referenced = Vec::with_capacity(REFERENCED.len());
        for ((name, held), array) in REFERENCED.iter().zip(&arrays[1..]) {
            referenced.push(match held {
                Held::Text => Referenced::Text(Texts::of(array.as_ref())?),
                Held::Time => Referenced::Time(
                    array
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .ok_or_else(|| DataFusionError::Internal(format!("{name} is a {}", array.data_type())))?,
                ),
                Held::Map => {
                    let map = array
                        .as_map_opt()
                        .ok_or_else(|| DataFusionError::Internal(format!("{name} is a {}", array.data_type())))?;
                    if map.keys().null_count() > 0 {
                        return Err(DataFusionError::Internal(format!("{name} has a NULL key")));
                    }
                    Referenced::Map(map, Texts::of(map.keys().as_ref())?, Texts::of(map.values().as_ref())?)
                }
            });
        }
        let mut out = StringViewBuilder::with_capacity(rows);
        let mut text = String::new();
        for row in 0..rows {
            let Some(stored) = stored.get(row) else {
                out.append_null();
                continue;
            };
            text.clear();
            rebuild(stored, &mut text, |place, flags, text| {
                referenced[place].write(row, flags, text)
            })
            .map_err(|error| DataFusionError::Execution(error.to_string()))?;
            out.append_value(&text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct EventJsonChecksum {
    signature: Signature,
}

impl EventJsonChecksum {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for EventJsonChecksum {
    fn name(&self) -> &str {
        "traillake_event_json_checksum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = call_rows(&args.args);
        let array = args.args[0].to_array(rows)?;
        let texts = Texts::of(array.as_ref())?;
        let mut out = StringViewBuilder::with_capacity(rows);
        for row in 0..rows {
            out.append_option(texts.get(row).map(checksum));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
