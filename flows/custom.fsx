// A flow that extends Fer in F#: a stage of its own (histogram equalisation between augment and split)
// and a model of its own (a small CNN), trained beside the seed CNN. Edit either and only what depends on it
// is recomputed. `fer stages flows/custom.fsx` shows the graph.
#load "Fer.fsx"
open Fer
open TorchSharp
open Fer.Core.Models

let count  = param "count" 3000
let epochs = param "epochs" 4
let seed   = param "seed" 7

/// Histogram equalisation of one 8-bit image: each grey level goes to its rank in the image's cumulative histogram.
let equalizeImage (strength: float) (pixels: byte[]) : byte[] =
    let histogram = Array.zeroCreate<int> 256
    for p in pixels do histogram[int p] <- histogram[int p] + 1
    let cdf = Array.scan (+) 0 histogram |> Array.tail
    let first = cdf |> Array.find (fun c -> c > 0)
    let n = pixels.Length
    Array.init n (fun i ->
        let p = int pixels[i]
        let equal = if n = first then float p else 255.0 * float (cdf[p] - first) / float (n - first)
        byte (System.Math.Round(strength * equal + (1.0 - strength) * float p)))

type EqualizeSettings = { Strength: float }

let equalize =
    faceStage "equalize" { Strength = 1.0 } (fun settings faces ->
        let side = faces.Side
        let pixels = Array.concat [ for i in 0 .. faces.Count - 1 -> equalizeImage settings.Strength (faces.Image(i).ToArray()) ]
        Fer.Core.Data.FaceSet(side, faces.ClassNames, faces.Ids, faces.Labels, faces.SourceIds, faces.Flipped, faces.Usage, pixels))

/// A small CNN in F#: two conv-ReLU-pool blocks and a dense classifier, layers named as Keras would.
type FSharpCnn(classes: int, side: int, dropout: float) as this =
    inherit FerModel("FSharpCnn")
    let names = KerasNames()
    do
        names.Add("conv2d", "Conv2D", Conv2dRelu(1L, 16L, 3L, padding = 1L)) |> ignore
        names.Add("max_pooling2d", "MaxPooling2D", torch.nn.MaxPool2d(2L, 2L)) |> ignore
        names.Add("conv2d", "Conv2D", Conv2dRelu(16L, 32L, 3L, padding = 1L)) |> ignore
        names.Add("max_pooling2d", "MaxPooling2D", torch.nn.MaxPool2d(2L, 2L)) |> ignore
        names.Add("dropout", "Dropout", torch.nn.Dropout(dropout)) |> ignore
        names.Add("dense", "Dense", FlattenDense(32L * int64 (side / 4) * int64 (side / 4), int64 classes)) |> ignore
        for layer in names.Layers do this.register_module(layer.Name, layer.Module)
    override _.Layers = names.Layers
    override _.InputSide = side
    override _.NumClasses = classes

registerModel "fsharp-cnn" Convolutional [ "dropout" => 0.25 ] (fun classes side hyper -> new FSharpCnn(classes, side, hyper["dropout"]))

flow "custom" [
    ingest    [ "count" => count; "seed" => seed ]
    augment   [ "flip" => true ]
    equalize  [ "strength" => 1.0 ]
    split     [ "valid_fraction" => 0.1; "seed" => seed ]
    train [ model "cnn" "seed-cnn" [ "lr" => 1e-3 ]
            model "fsharp" "fsharp-cnn" [ "lr" => 2e-3 ] ] [ "epochs" => epochs; "seed" => seed ]
    predict   [ "tta" => "flip" ]
    visualize [ "members" => "cnn,fsharp"; "ascent_steps" => 50; "gradcam_layer" => "conv2d_2"; "filter_layer" => "conv2d_2" ]
    report    []
]
