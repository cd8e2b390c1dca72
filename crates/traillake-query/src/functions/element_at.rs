//! Trino's `element_at`: the value of a key in a map (NULL when the key is missing), or the element
//! at a 1-based index of an array (negative from the end, NULL when out of range, an error at 0).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, UInt32Builder};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::finish;

/// Returns the `element_at` function.
pub fn element_at() -> ScalarUDF {
    ScalarUDF::from(ElementAt {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementAt {
    signature: Signature,
}

impl ScalarUDFImpl for ElementAt {
    fn name(&self) -> &str {
        "element_at"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(fields) => Ok(fields[1].data_type().clone()),
                other => plan_err!("element_at: a map with entries of type {other}"),
            },
            DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => Ok(item.data_type().clone()),
            DataType::Null => Ok(DataType::Null),
            other => plan_err!("element_at takes a map or an array, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let container = args.args[0].to_array(rows)?;
        let key = args.args[1].to_array(rows)?;
        let result = match container.data_type() {
            DataType::Map(..) => map_value(&container, &key)?,
            DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) => {
                let list = cast(&container, &DataType::List(list_item(container.data_type())))?;
                array_element(&list, &key)?
            }
            DataType::Null => container,
            other => return exec_err!("element_at takes a map or an array, not {other}"),
        };
        finish(&args.args, result)
    }
}

fn list_item(data_type: &DataType) -> Arc<datafusion::arrow::datatypes::Field> {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => Arc::clone(item),
        _ => unreachable!("called on lists only"),
    }
}

fn map_value(container: &ArrayRef, key: &ArrayRef) -> Result<ArrayRef> {
    let map = container.as_map();
    let keys = cast(map.keys(), &DataType::Utf8)?;
    let keys = keys.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
    let wanted = cast(key, &DataType::Utf8)?;
    let wanted = wanted.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
    let offsets = map.value_offsets();
    let mut indices = UInt32Builder::with_capacity(map.len());
    for row in 0..map.len() {
        if map.is_null(row) || wanted.is_null(row) {
            indices.append_null();
            continue;
        }
        let target = wanted.value(row);
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let found = (start..end).find(|&i| keys.is_valid(i) && keys.value(i) == target);
        indices.append_option(found.map(|i| i as u32));
    }
    Ok(take(map.values().as_ref(), &indices.finish(), None)?)
}

fn array_element(list: &ArrayRef, index: &ArrayRef) -> Result<ArrayRef> {
    let list = list.as_list::<i32>();
    let index = cast(index, &DataType::Int64)?;
    let index = index.as_any().downcast_ref::<Int64Array>().expect("cast to Int64");
    let offsets = list.value_offsets();
    let mut indices = UInt32Builder::with_capacity(list.len());
    for row in 0..list.len() {
        if list.is_null(row) || index.is_null(row) {
            indices.append_null();
            continue;
        }
        let (start, end) = (offsets[row] as i64, offsets[row + 1] as i64);
        let position = match index.value(row) {
            0 => return exec_err!("SQL array indices start at 1"),
            i if i > 0 => start + i - 1,
            i => end + i,
        };
        let inside = position >= start && position < end;
        indices.append_option(inside.then_some(position as u32));
    }
    Ok(take(list.values().as_ref(), &indices.finish(), None)?)
}
