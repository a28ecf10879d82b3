// Placeholder: replaced by the capture CLI.
int main() { return 1; }
