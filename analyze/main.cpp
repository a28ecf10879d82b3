// Placeholder: replaced by the analyze CLI.
int main() { return 1; }
