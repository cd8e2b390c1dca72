//! Set operations line a timestamp column up with a text column as text, as CloudTrail Lake does
//! (semantics §6.4): the Okta sample unions `eventData.eventTime` (text) with `eventTime`
//! (timestamp). DataFusion would cast the text to timestamps instead, failing on text that is no
//! time; this analyzer rule, run before type coercion, renders the timestamps as Lake's text
//! (`YYYY-MM-DD HH:MM:SS.fff`) in the inputs that hold them.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Union};
use datafusion::optimizer::AnalyzerRule;

use crate::functions::timestamp_text;

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub struct TimestampsMeetTextAsText;

fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl AnalyzerRule for TimestampsMeetTextAsText {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|node| {
            let LogicalPlan::Union(union) = &node else {
                return Ok(Transformed::no(node));
            };
            let width = union.schema.fields().len();
            let to_text: Vec<usize> = (0..width)
                .filter(|&index| {
                    let types: Vec<&DataType> = union
                        .inputs
                        .iter()
                        .map(|input| input.schema().field(index).data_type())
                        .collect();
                    types.iter().any(|t| matches!(t, DataType::Timestamp(..))) && types.iter().any(|t| is_text(t))
                })
                .collect();
            if to_text.is_empty() {
                return Ok(Transformed::no(node));
            }
            let mut inputs = Vec::with_capacity(union.inputs.len());
            for input in &union.inputs {
                let schema = input.schema();
                let needs = to_text
                    .iter()
                    .any(|&i| matches!(schema.field(i).data_type(), DataType::Timestamp(..)));
                if !needs {
                    inputs.push(Arc::clone(input));
                    continue;
                }
                let columns = schema.iter().enumerate().map(|(index, (qualifier, field))| {
                    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                    if to_text.contains(&index) && matches!(field.data_type(), DataType::Timestamp(..)) {
                        timestamp_text().call(vec![column]).alias(field.name())
                    } else {
                        column
                    }
                });
                inputs.push(Arc::new(
                    LogicalPlanBuilder::from(input.as_ref().clone())
                        .project(columns)?
                        .build()?,
                ));
            }
            Ok(Transformed::yes(LogicalPlan::Union(Union::try_new_with_loose_types(
                inputs,
            )?)))
        })
        .data()
    }

    fn name(&self) -> &str {
        "timestamps_meet_text_as_text"
    }
}
