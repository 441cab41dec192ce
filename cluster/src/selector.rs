//! Kubernetes label selectors (`matchLabels` and `matchExpressions`, ANDed), matched
//! against a node's labels as the API server matches them. An empty selector matches
//! every node.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Checks the selector's operators and their values (In and NotIn need values,
/// Exists and DoesNotExist take none).
pub fn validate(selector: &LabelSelector) -> Result<(), String> {
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "matchExpressions: {} {} needs values",
                    requirement.key, requirement.operator
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "matchExpressions: {} {} takes no values",
                    requirement.key, requirement.operator
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "matchExpressions: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `labels` satisfy `selector` (checked by [`validate`] first; an unknown
/// operator matches nothing).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    labels_match
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|requirement| {
                let value = labels.get(&requirement.key);
                let values = requirement.values.as_deref().unwrap_or_default();
                match requirement.operator.as_str() {
                    "In" => value.is_some_and(|value| values.contains(value)),
                    "NotIn" => !value.is_some_and(|value| values.contains(value)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn selectors_match_as_kubernetes_does() {
        let node = labels(&[("rack", "a"), ("role", "rr")]);
        let cases = [
            (LabelSelector::default(), true),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("rack", "a")])),
                    match_expressions: None,
                },
                true,
            ),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("rack", "b")])),
                    match_expressions: None,
                },
                false,
            ),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("rack", "a")])),
                    match_expressions: Some(vec![expression("role", "In", &["rr", "edge"])]),
                },
                true,
            ),
            (
                LabelSelector {
                    match_labels: None,
                    match_expressions: Some(vec![expression("role", "NotIn", &["rr"])]),
                },
                false,
            ),
            (
                LabelSelector {
                    match_labels: None,
                    match_expressions: Some(vec![expression("zone", "NotIn", &["x"])]),
                },
                true,
            ),
            (
                LabelSelector {
                    match_labels: None,
                    match_expressions: Some(vec![
                        expression("role", "Exists", &[]),
                        expression("zone", "DoesNotExist", &[]),
                    ]),
                },
                true,
            ),
        ];
        for (selector, expected) in cases {
            validate(&selector).unwrap();
            assert_eq!(matches(&selector, &node), expected, "{selector:?}");
        }
    }

    #[test]
    fn bad_expressions_are_refused() {
        for (requirement, words) in [
            (expression("a", "Equals", &["b"]), "unknown operator"),
            (expression("a", "In", &[]), "needs values"),
            (expression("a", "Exists", &["b"]), "takes no values"),
        ] {
            let selector = LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![requirement]),
            };
            let message = validate(&selector).unwrap_err();
            assert!(message.contains(words), "{message}");
            if words == "unknown operator" {
                assert!(!matches(&selector, &labels(&[("a", "b")])));
            }
        }
    }
}
