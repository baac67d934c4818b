// The F# vocabulary of Fer flows. Every flow script starts with #load "Fer.fsx".
// A flow script is code: `fer run` and `fer stages` evaluate it with your rights, as FAKE and Cake do theirs.
module Fer

open Fer.Flow.Pipeline
open Fer.Flow.Scripting
open Fer.Flow.Stages

/// A flow parameter with its default; `--set name=value` overrides it.
let param (name: string) (defaultValue: 'T) : 'T = FlowScript.Param<'T>(name, defaultValue)

/// A setting: "valid_fraction" => 0.1
let (=>) (key: string) (value: 'T) = Setting(key, box value)

/// A node of a stage (built-in or defined in the script) with its settings.
let stage kind (settings: Setting list) = FlowScript.Stage(kind, settings)
let ingest settings = stage "ingest" settings
let augment settings = stage "augment" settings
let split settings = stage "split" settings
/// An ensemble member: a name, a registered model (one of Fer's, such as seed-cnn, or one the script registers), its settings.
let model name modelName (settings: Setting list) = FlowScript.Member(name, modelName, settings)
/// One node per member (train.NAME); the settings after the members apply to every member.
let train (members: MemberSpec list) (settings: Setting list) = FlowScript.Train(members, settings)
let predict settings = stage "predict" settings
let visualize settings = stage "visualize" settings
let report settings = stage "report" settings

/// Asks Slurm for more for these nodes' jobs under `--executor slurm`: `train [...] [...] |> slurm [ "--gres=gpu:1" ]`.
let slurm (sbatchArguments: string list) (item: FlowItem) = item.Slurm(sbatchArguments)

/// Takes a node's input from these nodes when more than one could feed it: `stage "x" [] |> from ["a"]`.
let from (producers: string list) (item: FlowItem) = item.From(producers)

/// Defines a stage: a function from its settings record and typed input to its typed output. The input is one
/// stage's output (`faces: TrainingFaces`), a tuple of several (`(split: SplitFaces, raw: RawFaces option)`; an
/// option is an input the flow may lack, a `Produced<T> list` takes every node making a T), or a record marked
/// `interface IStageInputs`: its ports follow from that type. Returns the function that places it in a flow.
let defineStage<'In, 'Settings, 'Out when 'In: not struct and 'Settings: not struct and 'Out: not struct>
        name (defaults: 'Settings) (run: StageContext -> 'Settings -> 'In -> 'Out) =
    FlowScript.DefineStage<'In, 'Settings, 'Out>(name, defaults, System.Func<_, _, _, _>(run))
    fun (settings: Setting list) -> stage name settings

/// A stage that rewrites every training face (it sits between augment and split): `transform settings faces`.
let faceStage name (defaults: 'Settings) (transform: 'Settings -> Fer.Core.Data.FaceSet -> Fer.Core.Data.FaceSet) =
    defineStage<TrainingFaces, 'Settings, TrainingFaces> name defaults (fun ctx settings input ->
        let faces = input.Faces.ReadAsync(ctx.CancellationToken).Result
        TrainingFaces(FaceTable.WriteAsync(ctx, "faces.parquet", transform settings faces).Result))

/// Registers a model written in the script: `registerModel "name" Convolutional [ "dropout" => 0.3 ] (fun classes side hyper -> ...)`.
let registerModel name family (hyperparameters: Setting list) (create: int -> int -> System.Collections.Generic.IReadOnlyDictionary<string, float> -> Fer.Core.Models.FerModel) =
    FlowScript.RegisterModel(name, family, hyperparameters, System.Func<_, _, _, _>(create))

let Convolutional = Fer.Core.Models.ModelFamily.Convolutional
let FullyConnected = Fer.Core.Models.ModelFamily.FullyConnected

/// Sweeps a parameter or setting over values (its key as --set writes it): `sweep "epochs" [10; 20]`; `fer run`
/// then runs a trial per combination (`--sweep` on the command line adds or replaces axes).
let sweep (key: string) (values: 'T list) = FlowScript.Sweep(key, values |> List.map box)

/// Declares the flow: its name and nodes, in any order (the engine sorts them by what each consumes).
let flow name (items: FlowItem list) = FlowScript.Define(name, items) |> ignore
