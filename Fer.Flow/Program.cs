using FSharp.Compiler.Interactive;
var cfg = Shell.FsiEvaluationSession.GetDefaultConfiguration();
var sw = System.Diagnostics.Stopwatch.StartNew();
var argv = new[] { "fsi.exe", "--noninteractive", "--nologo", "--gui-", "-r:" + typeof(Fer.Core.Data.FaceSet).Assembly.Location };
using var inStream = new StringReader("");
var session = Shell.FsiEvaluationSession.Create(cfg, argv, inStream, Console.Out, Console.Error, collectible: false, legacyReferenceResolver: null);
var (res, diags) = session.EvalScriptNonThrowing(args[0]);
foreach (var d in diags) Console.WriteLine(d.ToString());
var v = session.EvalExpressionNonThrowing("T.flow");
Console.WriteLine(v.Item1.IsChoice1Of2 ? "ok" : "fail");
if (v.Item1 is Microsoft.FSharp.Core.FSharpChoice<Microsoft.FSharp.Core.FSharpOption<Shell.FsiValue>, Exception>.Choice1Of2 c)
{ var o = c.Item.Value.ReflectionValue; Console.WriteLine(o!.GetType().AssemblyQualifiedName + " " + (o is Fer.Core.Data.FaceSet)); }
Console.WriteLine(sw.ElapsedMilliseconds);
