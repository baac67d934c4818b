// The seed report's experiment (HW3) on a real FER2013 file, done leak-free:
//   dotnet run --project Fer.Flow -c Release -- run flows/hw3.fsx --set train=data/fer2013.csv
//   (or the course files: --set train=data/train.csv --set test=data/test.csv)
// Without a file it runs on synthetic faces. --set split.leaky=true reproduces the report's flip-then-split.
#load "Fer.fsx"
open Fer

let trainFile = param "train" ""
let testFile  = param "test" ""
let epochs    = param "epochs" 40
let patience  = param "patience" 8
let members   = param "cnn_members" 3
let seed      = param "seed" 0

let cnn i = model (sprintf "cnn%d" (i + 1)) "seed-cnn" [ "augment" => true; "reduce_lr_factor" => 0.5; "seed" => seed + i ]

flow "hw3" [
    ingest    [ "train" => trainFile; "test" => testFile; "count" => 6000; "seed" => seed ]
    augment   [ "flip" => true ]
    split     [ "valid_fraction" => 0.1; "seed" => seed; "leaky" => false ]
    train     ([ for i in 0 .. members - 1 -> cnn i ] @ [ model "dnn" "seed-dnn" [ "lr" => 5e-4; "seed" => seed ] ])
              [ "epochs" => epochs; "patience" => patience ]
    predict   [ "tta" => "flip" ]
    visualize [ "members" => "cnn1"; "per_class" => 1; "filter_layer" => "max_pooling2d_1"; "output_layer" => "conv2d_1" ]
    report    []
]
