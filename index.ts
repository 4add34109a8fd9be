// Entry point for the Pulumi CLI: the program's outputs become the stack outputs.
import { definePlatform } from "./components/program";

export = definePlatform;
