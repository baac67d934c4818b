// The F# vocabulary of Fer flows. Every flow script starts with #load "Fer.fsx".
// The fer host references Fer.Flow and Fer.Core; the functions below only shape calls to Fer.Flow.Scripting.
module Fer

open Fer.Flow.Scripting

/// A flow parameter with its default; `--set name=value` overrides it.
let param (name: string) (defaultValue: 'T) : 'T = FlowScript.Param<'T>(name, defaultValue)

/// A setting: "valid_fraction" => 0.1
let (=>) (key: string) (value: 'T) = Setting(key, box value)

let stage name (settings: Setting list) = FlowScript.Stage(name, settings)
let ingest settings = stage "ingest" settings
let augment settings = stage "augment" settings
let split settings = stage "split" settings
/// An ensemble member: a name, a registered model (seed-cnn, seed-dnn, vgg-bn) and its settings.
let model name modelName (settings: Setting list) = FlowScript.Member(name, modelName, settings)
let train (members: Fer.Flow.Pipeline.MemberSpec list) (settings: Setting list) = FlowScript.Train(members, settings)
let predict settings = stage "predict" settings
let visualize settings = stage "visualize" settings
let report settings = stage "report" settings

/// Declares the flow: its name and stages in order.
let flow name (stages: Fer.Flow.Pipeline.StageSpec list) = FlowScript.Define(name, stages) |> ignore
