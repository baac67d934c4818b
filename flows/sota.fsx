// The published VGG-style FER2013 recipe (Khaireddin & Chen 2021, 73.3 % on PrivateTest) as far as Fer has its parts:
// four stages of 2x(conv3x3-BN-ReLU) + max-pool (64, 128, 256, 512), two dense layers of 4096 with dropout; SGD with
// Nesterov momentum 0.9, lr 0.01, weight decay 1e-4, batch 64, the rate times 0.75 after 5 epochs without progress;
// shifts, rotations of 10 degrees, zoom 0.8-1.2, mirror images and random erasing on every batch; random 40x40 crops
// of the 48x48 faces in training, the average of ten crops (centre, corners, mirrored) in prediction; 300 epochs.
//   fer run flows/sota.fsx --set train=data/fer2013.csv            (Kaggle's file: PublicTest is the validation set)
#load "Fer.fsx"
open Fer

let trainFile = param "train" ""
let epochs    = param "epochs" 300
let width     = param "width" 1.0     // channels of every layer times this (0.25 for a quick look on a CPU)
let dense     = param "dense" 4096
let crop      = param "crop" 40       // the side of the crops the network sees (48: whole faces)
let count     = param "count" 3000    // synthetic faces when no file is given
let seed      = param "seed" 0

flow "sota" [
    ingest  [ "train" => trainFile; "count" => count; "seed" => seed ]
    augment [ "flip" => false ]     // mirror images come from the online augmentation instead
    split   [ "seed" => seed ]
    train [ model "vgg" "vgg-bn" [ "width" => width; "dense" => dense; "dense_layers" => 2; "dropout" => 0.5; "crop" => crop ] ]
          [ "epochs" => epochs; "batch_size" => 64; "optimizer" => "sgd"; "lr" => 0.01; "momentum" => 0.9; "nesterov" => true
            "weight_decay" => 1e-4; "reduce_lr_factor" => 0.75; "reduce_lr_patience" => 5; "patience" => 0
            "augment" => true; "augment_shift" => 0.1; "augment_rotation" => 10.0; "augment_zoom" => 0.2
            "augment_flip" => true; "erase_probability" => 0.5; "seed" => seed ]
    predict [ "tta" => "ten_crop" ]
    report  []
]
