//! template.yaml as the tests read it (`selfheal_tests::yaml` keeps its `!Ref` tags):
//! the Lambda functions, each by the cargo-lambda binary it runs.

/// Every `AWS::Serverless::Function` of `doc`: its binary name and resource.
pub fn functions(doc: &selfheal_tests::yaml::Value) -> Vec<(String, &selfheal_tests::yaml::Value)> {
    doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("every function names its cargo-lambda binary");
            (binary.to_owned(), r)
        })
        .collect()
}
