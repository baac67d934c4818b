namespace Fer.Flow.Scripting;

/// <summary>
/// The flow vocabulary, Fer.fsx, as shipped beside fer.dll (in the build output and in the Fer.Tool package). A
/// script that says <c>#load "Fer.fsx"</c> with no Fer.fsx beside it (a flow outside the repository) gets this
/// one: its folder is passed to the F# compiler as an include folder, which #load searches.
/// </summary>
public static class FlowVocabulary
{
    public const string FileName = "Fer.fsx";

    /// <summary>The shipped Fer.fsx, or null when this build has none beside it.</summary>
    public static string? Shipped =>
        Path.Combine(AppContext.BaseDirectory, FileName) is var path && File.Exists(path) ? path : null;

    /// <summary>The include folder for this script: the shipped vocabulary's, unless the script's own folder has Fer.fsx.</summary>
    public static string? IncludeDirFor(string scriptPath) =>
        File.Exists(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(scriptPath))!, FileName)) ? null
            : Shipped is { } shipped ? Path.GetDirectoryName(shipped) : null;

    /// <summary>A starter flow: the quickstart's stages on synthetic faces, with the parameters a user changes first.</summary>
    public static string Starter(string name) => $$"""
        // {{name}}: a Fer flow. Run it with `fer run {{name}}.fsx`; list its stages with `fer stages {{name}}.fsx`.
        // Fer.fsx (the flow vocabulary) ships with fer; it is found even when no copy sits beside this file.
        #load "Fer.fsx"
        open Fer

        let trainFile = param "train" ""  // a Kaggle fer2013.csv or course train.csv; empty: synthetic faces
        let count  = param "count" 3000   // synthetic faces, when train is empty
        let epochs = param "epochs" 4
        let seed   = param "seed" 7

        flow "{{name}}" [
            ingest    [ "train" => trainFile; "count" => count; "seed" => seed ]
            augment   [ "flip" => true ]
            split     [ "valid_fraction" => 0.1; "seed" => seed ]
            train [ model "cnn" "seed-cnn" [ "lr" => 1e-3 ]
                    model "dnn" "seed-dnn" [ "lr" => 5e-4 ] ] [ "epochs" => epochs; "seed" => seed ]
            predict   [ "tta" => "flip" ]
            visualize [ "members" => "cnn" ]
            report    []
        ]

        """;
}
