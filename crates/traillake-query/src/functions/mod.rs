//! The Trino functions CloudTrail Lake queries use, as DataFusion functions: DataFusion's own
//! where they behave as Trino's (`regexp_like`, `approx_distinct`, `cardinality`, `map_keys`,
//! `map_values`, `date_trunc`, ...), aliases where only the name differs (`transform`, `filter`,
//! `arbitrary`), and the rest written here: [`element_at`], [`json`], [`time`], two-argument
//! `replace`.

mod element_at;
pub mod json;
mod time;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// Registers the dialect's functions in a session.
pub fn register(context: &SessionContext) {
    let mut scalars = vec![element_at::element_at(), replace(), timestamp_text()];
    scalars.extend(json::functions());
    scalars.extend(time::functions());
    for function in scalars {
        context.register_udf(function);
    }
    for (alias, name) in [("transform", "array_transform"), ("filter", "array_filter")] {
        let function = context
            .higher_order_function(name)
            .expect("DataFusion has the lambda functions");
        context.register_higher_order_function(Arc::new(function.as_ref().clone().with_aliases([alias])));
    }
    let any_value = context.udaf("any_value").expect("DataFusion has any_value");
    context.register_udaf(any_value.as_ref().clone().with_aliases(["arbitrary"]));
}

/// Returns the number of rows of a call: its array arguments' length, 1 when all are scalars.
pub(crate) fn call_rows(args: &[ColumnarValue]) -> usize {
    args.iter()
        .filter_map(|arg| match arg {
            ColumnarValue::Array(array) => Some(array.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .max()
        .unwrap_or(1)
}

/// Returns the number of rows of a call and its arguments as text.
pub(crate) fn string_args(args: &[ColumnarValue]) -> Result<(usize, Vec<TextColumn>)> {
    let rows = call_rows(args);
    let mut columns = Vec::with_capacity(args.len());
    for arg in args {
        let array = arg.to_array(1)?;
        let text = cast(&array, &DataType::Utf8)?;
        columns.push(TextColumn(
            text.as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8")
                .clone(),
        ));
    }
    Ok((rows, columns))
}

/// One argument of a call as text.
pub(crate) struct TextColumn(StringArray);

impl TextColumn {
    /// Returns the value of `row`; a scalar argument has the same value in every row.
    pub fn get(&self, row: usize) -> Option<&str> {
        let row = if self.0.len() == 1 { 0 } else { row };
        self.0.is_valid(row).then(|| self.0.value(row))
    }
}

/// Returns `lake_timestamp_text(ts)`: a timestamp as GetQueryResults renders it, for set
/// operations that line timestamps up with text.
pub fn timestamp_text() -> ScalarUDF {
    create_udf(
        "lake_timestamp_text",
        vec![DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        )],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let array = args[0].to_array(call_rows(args))?;
            let mut out = StringBuilder::new();
            for row in 0..array.len() {
                out.append_option(crate::render::render(&array, row)?);
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

/// Returns the result of a call: a scalar when every argument was one.
pub(crate) fn finish(args: &[ColumnarValue], result: ArrayRef) -> Result<ColumnarValue> {
    if args.iter().all(|arg| matches!(arg, ColumnarValue::Scalar(_))) {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?));
    }
    Ok(ColumnarValue::Array(result))
}

/// Returns a function of `arity` text arguments computed row by row, returning text.
pub(crate) fn text_udf(name: &str, arity: usize, compute: fn(&[Option<&str>]) -> Result<Option<String>>) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8; arity],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let (rows, columns) = string_args(args)?;
            let mut out = StringBuilder::new();
            let mut values = Vec::with_capacity(columns.len());
            for row in 0..rows {
                values.clear();
                values.extend(columns.iter().map(|column| column.get(row)));
                out.append_option(compute(&values)?);
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

/// Trino's `replace(string, search[, replacement])`: without a replacement, removes `search`.
fn replace() -> ScalarUDF {
    use datafusion::logical_expr::{ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature};

    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Replace {
        signature: Signature,
    }

    impl ScalarUDFImpl for Replace {
        fn name(&self) -> &str {
            "replace"
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(DataType::Utf8)
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
            let (rows, columns) = string_args(&args.args)?;
            let mut out = StringBuilder::new();
            for row in 0..rows {
                let replacement = if columns.len() == 3 {
                    columns[2].get(row)
                } else {
                    Some("")
                };
                match (columns[0].get(row), columns[1].get(row), replacement) {
                    (Some(text), Some(search), Some(replacement)) => {
                        out.append_value(text.replace(search, replacement))
                    }
                    _ => out.append_null(),
                }
            }
            finish(&args.args, Arc::new(out.finish()))
        }
    }

    ScalarUDF::from(Replace {
        signature: Signature::one_of(
            vec![TypeSignature::String(2), TypeSignature::String(3)],
            Volatility::Immutable,
        ),
    })
}
