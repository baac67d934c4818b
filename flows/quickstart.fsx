// Quickstart: synthetic faces, the seed report's CNN and DNN, a few epochs, on 2 CPU cores in minutes.
//   dotnet run --project Fer.Flow -c Release -- run flows/quickstart.fsx [--set epochs=6]
#load "Fer.fsx"
open Fer

let count  = param "count" 3000
let epochs = param "epochs" 4
let seed   = param "seed" 7

flow "quickstart" [
    ingest    [ "count" => count; "seed" => seed ]
    augment   [ "flip" => true ]
    split     [ "valid_fraction" => 0.1; "seed" => seed ]
    train [ model "cnn" "seed-cnn" [ "lr" => 1e-3 ]
            model "dnn" "seed-dnn" [ "lr" => 5e-4 ] ] [ "epochs" => epochs; "seed" => seed ]
    predict   [ "tta" => "flip" ]
    visualize [ "members" => "cnn"; "ascent_steps" => 200 ]
    report    []
]
